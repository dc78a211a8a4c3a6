"""Engagement endpoints."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request

from outrider_tracker.actor import get_actor
from outrider_tracker.audit import service as audit
from outrider_tracker.audit.models import AuditEntry
from outrider_tracker.engagement import service
from outrider_tracker.engagement.models import EngagementCreate, EngagementRead

router = APIRouter(prefix="/v1/engagements", tags=["engagements"])


@router.post("", status_code=201, summary="Open an engagement")
async def create_engagement(
    engagement_in: EngagementCreate, request: Request, actor: Annotated[str, Depends(get_actor)]
) -> EngagementRead:
    engagement = await service.create(request.app.state.db.pool, engagement_in=engagement_in, actor=actor)
    request.app.state.outbox_wake.set()  # publish now rather than at the relay's next poll
    return engagement


@router.get("", summary="List engagements")
async def list_engagements(request: Request) -> list[EngagementRead]:
    return await service.get_all(request.app.state.db.pool)


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
