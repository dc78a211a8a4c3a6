"""Deployment profile, hand-off and tech-review endpoints."""

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from outrider_tracker.changes import changed
from outrider_tracker.handoff import service
from outrider_tracker.handoff.models import (
    HandoffCreate,
    HandoffRead,
    TechReviewCreate,
    TechReviewDecision,
    TechReviewRead,
)
from outrider_tracker.profile import service as profiles
from outrider_tracker.profile.models import DeploymentProfileRead, DeploymentProfileUpdate
from outrider_tracker.stage.api import NOT_FOUND, Actor, Engagement
from outrider_tracker.stage.models import StageBlocked
from outrider_tracker.transition import FinalState

router = APIRouter(prefix="/v1/engagements", tags=["handoffs"])


@router.get("/{engagement_id}/profile", summary="The technical design profile", responses=NOT_FOUND)
async def get_profile(engagement: Engagement, request: Request) -> DeploymentProfileRead:
    return await profiles.get(request.app.state.db.pool, engagement_id=engagement.id) or DeploymentProfileRead()


STALE: dict[int | str, dict[str, Any]] = {409: {"description": "The profile changed since the version sent"}}


@router.put(
    "/{engagement_id}/profile",
    summary="Replace the technical design profile (send the version you read to have a stale read refused)",
    responses={**NOT_FOUND, **STALE},
)
async def put_profile(
    profile: DeploymentProfileUpdate, engagement: Engagement, actor: Actor, request: Request
) -> DeploymentProfileRead:
    return await _write_profile(profile, engagement, actor, request, partial=False)


@router.patch(
    "/{engagement_id}/profile",
    summary="Change the fields of the technical design profile that are sent (null clears one); the others stay",
    responses={**NOT_FOUND, **STALE},
)
async def patch_profile(
    profile: DeploymentProfileUpdate, engagement: Engagement, actor: Actor, request: Request
) -> DeploymentProfileRead:
    return await _write_profile(profile, engagement, actor, request, partial=True)


async def _write_profile(
    profile: DeploymentProfileUpdate, engagement: Engagement, actor: Actor, request: Request, *, partial: bool
) -> DeploymentProfileRead:
    pool = request.app.state.db.pool
    change = profiles.put(pool, engagement_id=engagement.id, profile=profile, actor=actor, partial=partial)
    missing = f"engagement {engagement.id} not found"
    return await changed(request, change, missing=missing, conflict=profiles.StaleProfile)


@router.get("/{engagement_id}/handoffs", summary="Hand-offs between teams", responses=NOT_FOUND)
async def list_handoffs(engagement: Engagement, request: Request) -> list[HandoffRead]:
    return await service.get_handoffs(request.app.state.db.pool, engagement_id=engagement.id)


@router.post(
    "/{engagement_id}/handoffs",
    status_code=201,
    summary="Hand the engagement to another team (409 with the fields the receiving team still needs)",
    responses={**NOT_FOUND, 409: {"model": StageBlocked}},
)
async def request_handoff(
    handoff: HandoffCreate, engagement: Engagement, actor: Actor, request: Request
) -> HandoffRead:
    try:
        created = await service.request_handoff(request.app.state.db.pool, engagement_id=engagement.id,
                                                handoff=handoff, actor=actor)  # fmt: skip
    except service.MissingFields as exc:
        return JSONResponse(StageBlocked(detail=exc.detail, missing=exc.missing).model_dump(), 409)  # type: ignore[return-value]
    request.app.state.outbox_wake.set()
    return created


@router.post("/{engagement_id}/handoffs/{handoff_id}/accept",
             summary="Accept a hand-off (again: 200, nothing recorded)", responses=NOT_FOUND)  # fmt: skip
async def accept_handoff(handoff_id: UUID, engagement: Engagement, actor: Actor, request: Request) -> HandoffRead:
    change = service.accept_handoff(
        request.app.state.db.pool, engagement_id=engagement.id, handoff_id=handoff_id, actor=actor
    )
    return await changed(request, change, missing=f"hand-off {handoff_id} not found")


@router.get("/{engagement_id}/tech-reviews", summary="Tech-review requests", responses=NOT_FOUND)
async def list_reviews(engagement: Engagement, request: Request) -> list[TechReviewRead]:
    return await service.get_reviews(request.app.state.db.pool, engagement_id=engagement.id)


@router.post("/{engagement_id}/tech-reviews", status_code=201, summary="Request a tech review", responses=NOT_FOUND)
async def request_review(
    review: TechReviewCreate, engagement: Engagement, actor: Actor, request: Request
) -> TechReviewRead:
    created = await service.request_review(request.app.state.db.pool, engagement_id=engagement.id, review=review,
                                           actor=actor)  # fmt: skip
    request.app.state.outbox_wake.set()
    return created


@router.post(
    "/{engagement_id}/tech-reviews/{review_id}/decision",
    summary="Record the decision (the same again: 200, nothing recorded)",
    responses={**NOT_FOUND, 409: {"description": "Already decided otherwise"}},
)
async def decide_review(
    review_id: UUID, decision: TechReviewDecision, engagement: Engagement, actor: Actor, request: Request
) -> TechReviewRead:
    change = service.decide_review(
        request.app.state.db.pool, engagement_id=engagement.id, review_id=review_id, decision=decision, actor=actor
    )
    return await changed(request, change, missing=f"tech review {review_id} not found", conflict=FinalState)
