"""Touchpoint endpoints."""

from uuid import UUID

from fastapi import APIRouter, Request

from outrider_tracker.changes import changed
from outrider_tracker.stage.api import NOT_FOUND, Actor, Engagement
from outrider_tracker.touchpoint import service
from outrider_tracker.touchpoint.models import (
    TouchpointCancel,
    TouchpointCreate,
    TouchpointHeld,
    TouchpointRead,
    TouchpointUpdate,
)
from outrider_tracker.transition import FinalState

router = APIRouter(prefix="/v1/engagements", tags=["touchpoints"])
CHANGE_REFUSALS = {**NOT_FOUND, 409: {"description": "Already held or cancelled, and this would change it"}}


@router.get("/{engagement_id}/touchpoints", summary="Touchpoints by date", responses=NOT_FOUND)
async def list_touchpoints(engagement: Engagement, request: Request) -> list[TouchpointRead]:
    return await service.get_all(request.app.state.db.pool, engagement_id=engagement.id)


@router.post("/{engagement_id}/touchpoints", status_code=201, summary="Schedule a touchpoint", responses=NOT_FOUND)
async def create_touchpoint(
    touchpoint_in: TouchpointCreate, engagement: Engagement, actor: Actor, request: Request
) -> TouchpointRead:
    touchpoint = await service.create(request.app.state.db.pool, engagement_id=engagement.id,
                                      touchpoint_in=touchpoint_in, actor=actor)  # fmt: skip
    request.app.state.outbox_wake.set()
    return touchpoint


@router.post(
    "/{engagement_id}/touchpoints/{touchpoint_id}/held",
    summary="Record that a touchpoint took place (and schedule the next)",
    responses=CHANGE_REFUSALS,
)
async def hold_touchpoint(
    touchpoint_id: UUID, held: TouchpointHeld, engagement: Engagement, actor: Actor, request: Request
) -> TouchpointRead:
    pool = request.app.state.db.pool
    change = service.hold(pool, engagement_id=engagement.id, touchpoint_id=touchpoint_id, held=held, actor=actor)
    return await changed(request, change, missing=f"touchpoint {touchpoint_id} not found", conflict=FinalState)


@router.patch(
    "/{engagement_id}/touchpoints/{touchpoint_id}",
    summary="Reschedule or edit a scheduled touchpoint (its reminders follow)",
    responses=CHANGE_REFUSALS,
)
async def update_touchpoint(
    touchpoint_id: UUID, touchpoint_in: TouchpointUpdate, engagement: Engagement, actor: Actor, request: Request
) -> TouchpointRead:
    pool = request.app.state.db.pool
    change = service.update(
        pool, engagement_id=engagement.id, touchpoint_id=touchpoint_id, touchpoint_in=touchpoint_in, actor=actor
    )
    return await changed(request, change, missing=f"touchpoint {touchpoint_id} not found", conflict=FinalState)


@router.post(
    "/{engagement_id}/touchpoints/{touchpoint_id}/cancel",
    summary="Cancel a scheduled touchpoint (its reminders are withdrawn)",
    responses=CHANGE_REFUSALS,
)
async def cancel_touchpoint(
    touchpoint_id: UUID, cancel_in: TouchpointCancel, engagement: Engagement, actor: Actor, request: Request
) -> TouchpointRead:
    pool = request.app.state.db.pool
    change = service.cancel(
        pool, engagement_id=engagement.id, touchpoint_id=touchpoint_id, cancel_in=cancel_in, actor=actor
    )
    return await changed(request, change, missing=f"touchpoint {touchpoint_id} not found", conflict=FinalState)
