"""Engagement endpoints."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from outrider_common.http import INT32_MAX
from outrider_tracker.actor import get_actor
from outrider_tracker.audit import service as audit
from outrider_tracker.audit.models import AuditEntry
from outrider_tracker.changes import changed
from outrider_tracker.engagement import service
from outrider_tracker.engagement.models import (
    Destination,
    EngagementCreate,
    EngagementRead,
    EngagementStatus,
    EngagementUpdate,
    PlaybookId,
    StageId,
)

router = APIRouter(prefix="/v1/engagements", tags=["engagements"])


@router.post("", status_code=201, summary="Open an engagement")
async def create_engagement(
    engagement_in: EngagementCreate, request: Request, actor: Annotated[str, Depends(get_actor)]
) -> EngagementRead:
    engagement = await service.create(request.app.state.db.pool, engagement_in=engagement_in, actor=actor)
    request.app.state.outbox_wake.set()  # publish now rather than at the relay's next poll
    return engagement


@router.get("", summary="List engagements, filtered")
async def list_engagements(
    request: Request,
    playbook_id: Annotated[PlaybookId | None, Query(description="Only those following this playbook")] = None,
    stage: Annotated[StageId | None, Query(description="Only those in this stage (of any playbook)")] = None,
    status: EngagementStatus | None = None,
    overdue: Annotated[
        bool | None, Query(description="Only those with (true) or without (false) an overdue touchpoint")
    ] = None,
    owner: Annotated[str | None, Query(max_length=200, description="Only those this person owns in any role")] = None,
    target: Annotated[Destination | None, Query(description="Only those going to this destination")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX, description="Engagements to skip (newest first)")] = 0,
) -> list[EngagementRead]:
    return await service.get_all(request.app.state.db.pool, playbook_id=playbook_id, stage=stage, status=status,
                                 overdue=overdue, owner=owner, target=target, limit=limit, offset=offset,
                                 overdue_grace=request.app.state.settings.overdue_grace)  # fmt: skip


@router.get("/{engagement_id}", summary="One engagement", responses={404: {"description": "No such engagement"}})
async def get_engagement(engagement_id: UUID, request: Request) -> EngagementRead:
    engagement = await service.get(request.app.state.db.pool, engagement_id=engagement_id)
    if engagement is None:
        raise HTTPException(404, f"engagement {engagement_id} not found")
    return engagement


@router.get("/{engagement_id}/audit", summary="The engagement's audit trail", responses={404: {}})
async def get_audit(engagement_id: UUID, request: Request) -> list[AuditEntry]:
    pool = request.app.state.db.pool
    if await service.get(pool, engagement_id=engagement_id) is None:
        raise HTTPException(404, f"engagement {engagement_id} not found")
    return await audit.get_all(pool, engagement_id=engagement_id)


@router.patch(
    "/{engagement_id}",
    summary="Change an engagement (send the version you read)",
    responses={404: {"description": "No such engagement"}, 409: {"description": "Changed since you read it"}},
)
async def update_engagement(
    engagement_id: UUID, engagement_in: EngagementUpdate, request: Request, actor: Annotated[str, Depends(get_actor)]
) -> EngagementRead:
    change = service.update(
        request.app.state.db.pool, engagement_id=engagement_id, engagement_in=engagement_in, actor=actor
    )
    return await changed(
        request, change, missing=f"engagement {engagement_id} not found", conflict=service.StaleVersion
    )
