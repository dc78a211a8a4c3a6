"""Risk log endpoints."""

from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response

from outrider_tracker.changes import changed
from outrider_tracker.risk import service
from outrider_tracker.risk.models import FindingPromotion, RiskCreate, RiskRead, RiskUpdate
from outrider_tracker.stage.api import NOT_FOUND, Actor, Engagement

router = APIRouter(prefix="/v1/engagements", tags=["risks"])


@router.get("/{engagement_id}/risks", summary="The risk log", responses=NOT_FOUND)
async def list_risks(engagement: Engagement, request: Request) -> list[RiskRead]:
    return await service.get_all(request.app.state.db.pool, engagement_id=engagement.id)


@router.post("/{engagement_id}/risks", status_code=201, summary="Open a risk", responses=NOT_FOUND)
async def create_risk(risk_in: RiskCreate, engagement: Engagement, actor: Actor, request: Request) -> RiskRead:
    risk = await service.create(request.app.state.db.pool, engagement_id=engagement.id, risk_in=risk_in, actor=actor)
    request.app.state.outbox_wake.set()
    return risk


@router.post(
    "/{engagement_id}/risks/from-finding",
    status_code=201,
    summary="Promote an analyzer finding to the risk log (200 with the existing risk when already promoted)",
    responses={**NOT_FOUND, 200: {"description": "Already promoted"}},
)
async def promote_finding(
    promotion: FindingPromotion, engagement: Engagement, actor: Actor, request: Request, response: Response
) -> RiskRead:
    result = await service.promote_finding(request.app.state.db.pool, engagement_id=engagement.id,
                                           promotion=promotion, actor=actor)  # fmt: skip
    if result is None:
        raise HTTPException(404, f"no finding {promotion.rule} for {promotion.key}")
    risk, created = result
    if not created:
        response.status_code = 200
    request.app.state.outbox_wake.set()
    return risk


@router.patch("/{engagement_id}/risks/{risk_id}", summary="Change a risk (mitigation, owner, levels, status)",
              responses=NOT_FOUND)  # fmt: skip
async def update_risk(
    risk_id: UUID, risk_in: RiskUpdate, engagement: Engagement, actor: Actor, request: Request
) -> RiskRead:
    change = service.update(
        request.app.state.db.pool, engagement_id=engagement.id, risk_id=risk_id, risk_in=risk_in, actor=actor
    )
    return await changed(request, change, missing=f"risk {risk_id} not found")
