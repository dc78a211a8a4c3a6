"""Stage endpoints: checklist, advance, status."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from outrider_tracker.actor import get_actor
from outrider_tracker.engagement import service as engagements
from outrider_tracker.engagement.models import EngagementRead
from outrider_tracker.stage import service
from outrider_tracker.stage.models import (
    AdvanceRequest,
    ChecklistItemState,
    ChecklistUpdate,
    EngagementStatus,
    StageBlocked,
    StageChange,
)

router = APIRouter(prefix="/v1/engagements", tags=["stages"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such engagement"}}


async def engagement_or_404(engagement_id: UUID, request: Request) -> EngagementRead:
    """The engagement in the path, or 404."""
    engagement = await engagements.get(request.app.state.db.pool, engagement_id=engagement_id)
    if engagement is None:
        raise HTTPException(404, f"engagement {engagement_id} not found")
    return engagement


Engagement = Annotated[EngagementRead, Depends(engagement_or_404)]
Actor = Annotated[str, Depends(get_actor)]


def refused(exc: service.NotAllowed) -> JSONResponse:
    return JSONResponse(StageBlocked(detail=exc.detail, missing=exc.missing).model_dump(), status_code=409)


@router.get("/{engagement_id}/status", summary="Where is this customer?", responses=NOT_FOUND)
async def get_status(engagement: Engagement, request: Request) -> EngagementStatus:
    return await service.get_status(request.app.state.db.pool, engagement=engagement,
                                    overdue_grace=request.app.state.settings.overdue_grace)  # fmt: skip


@router.put(
    "/{engagement_id}/checklist/{item_id}",
    summary="Tick or untick a checklist item of the current stage",
    responses={**NOT_FOUND, 409: {"model": StageBlocked, "description": "The item completes itself from data"}},
)
async def set_checklist_item(
    item_id: str, update: ChecklistUpdate, engagement: Engagement, actor: Actor, request: Request
) -> list[ChecklistItemState]:
    try:
        return await service.set_item(
            request.app.state.db.pool,
            engagement=engagement,
            item_id=item_id,
            done=update.done,
            note=update.note,
            actor=actor,
        )
    except KeyError:
        raise HTTPException(404, f"stage '{engagement.stage}' has no checklist item '{item_id}'") from None
    except service.NotAllowed as exc:
        return refused(exc)  # type: ignore[return-value]


@router.post(
    "/{engagement_id}/advance",
    summary="Move to the next stage (refused with what is missing unless forced with a reason)",
    responses={
        **NOT_FOUND,
        409: {
            "model": StageBlocked,
            "description": "Refused: exit criteria not met (forcing past them needs a reason), the last stage, or the "
            "engagement moved meanwhile (`detail` says which)",
        },
    },
)
async def advance(
    engagement: Engagement, actor: Actor, request: Request, body: AdvanceRequest | None = None
) -> StageChange:
    body = body or AdvanceRequest()
    try:
        change = await service.advance(
            request.app.state.db.pool, engagement=engagement, force=body.force, reason=body.reason, actor=actor
        )
    except service.NotAllowed as exc:
        return refused(exc)  # type: ignore[return-value]
    request.app.state.outbox_wake.set()
    return change
