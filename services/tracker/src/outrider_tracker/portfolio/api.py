"""`GET /v1/portfolio`."""

from fastapi import APIRouter, Request

from outrider_tracker.portfolio import service
from outrider_tracker.portfolio.models import Portfolio

router = APIRouter(prefix="/v1", tags=["portfolio"])


@router.get("/portfolio", summary="Engagements per stage, overdue touchpoints, stalled engagements")
async def get_portfolio(request: Request) -> Portfolio:
    settings = request.app.state.settings
    return await service.get(
        request.app.state.db.pool, overdue_grace=settings.overdue_grace, stalled_after=settings.stalled_after
    )
