"""Token endpoints."""

from uuid import UUID

from fastapi import APIRouter, HTTPException, Request

from outrider_tracker.engagement import service as engagements
from outrider_tracker.token import service
from outrider_tracker.token.models import TokenCreate, TokenCreated, TokenRead

router = APIRouter(prefix="/v1/engagements", tags=["tokens"])


@router.post(
    "/{engagement_id}/tokens",
    status_code=201,
    summary="Mint an upload token for this engagement (shown once)",
    responses={404: {"description": "No such engagement"}},
)
async def create_token(engagement_id: UUID, request: Request, token_in: TokenCreate | None = None) -> TokenCreated:
    pool = request.app.state.db.pool
    if await engagements.get(pool, engagement_id=engagement_id) is None:
        raise HTTPException(404, f"engagement {engagement_id} not found")
    return await service.create(pool, engagement_id=engagement_id, token_in=token_in or TokenCreate())


@router.get(
    "/{engagement_id}/tokens",
    summary="Upload tokens of this engagement (metadata only)",
    responses={404: {"description": "No such engagement"}},
)
async def list_tokens(engagement_id: UUID, request: Request) -> list[TokenRead]:
    pool = request.app.state.db.pool
    if await engagements.get(pool, engagement_id=engagement_id) is None:
        raise HTTPException(404, f"engagement {engagement_id} not found")
    return await service.get_all(pool, engagement_id=engagement_id)


@router.delete("/{engagement_id}/tokens/{token_id}", status_code=204, summary="Revoke an upload token",
               responses={404: {"description": "No such token"}})  # fmt: skip
async def revoke_token(engagement_id: UUID, token_id: str, request: Request) -> None:
    if not await service.revoke(request.app.state.db.pool, engagement_id=engagement_id, token_id=token_id):
        raise HTTPException(404, f"token {token_id} not found")
