"""Token endpoints."""

from fastapi import APIRouter, Request

from outrider_tracker.changes import changed
from outrider_tracker.stage.api import NOT_FOUND, Actor, Engagement
from outrider_tracker.token import service
from outrider_tracker.token.models import TokenCreate, TokenCreated, TokenRead

router = APIRouter(prefix="/v1/engagements", tags=["tokens"])


@router.post(
    "/{engagement_id}/tokens",
    status_code=201,
    summary="Mint an upload token for this engagement (shown once)",
    responses={**NOT_FOUND, 409: {"description": "The engagement is closed (closing revoked its tokens)"}},
)
async def create_token(
    engagement: Engagement, actor: Actor, request: Request, token_in: TokenCreate | None = None
) -> TokenCreated:
    change = service.create(request.app.state.db.pool, engagement_id=engagement.id, token_in=token_in or TokenCreate(),
                            actor=actor)  # fmt: skip
    return await changed(request, change, missing=f"engagement {engagement.id} not found",
                         conflict=service.EngagementClosed)  # fmt: skip


@router.get("/{engagement_id}/tokens", summary="Upload tokens of this engagement (metadata only)", responses=NOT_FOUND)
async def list_tokens(engagement: Engagement, request: Request) -> list[TokenRead]:
    return await service.get_all(request.app.state.db.pool, engagement_id=engagement.id)


@router.delete("/{engagement_id}/tokens/{token_id}", status_code=204, summary="Revoke an upload token",
               responses={404: {"description": "No such engagement or token"}})  # fmt: skip
async def revoke_token(engagement: Engagement, token_id: str, actor: Actor, request: Request) -> None:
    change = service.revoke(request.app.state.db.pool, engagement_id=engagement.id, token_id=token_id, actor=actor)
    await changed(request, change, missing=f"token {token_id} not found")
