"""Token endpoints."""

from uuid import UUID

from fastapi import APIRouter, HTTPException, Request

from outrider_tracker.engagement import service as engagements
from outrider_tracker.token import service
from outrider_tracker.token.models import TokenCreate, TokenCreated

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
