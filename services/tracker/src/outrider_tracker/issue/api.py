"""Issues log and expansion opportunity endpoints."""

from uuid import UUID

from fastapi import APIRouter, Request

from outrider_tracker.changes import changed
from outrider_tracker.issue import service
from outrider_tracker.issue.models import (
    ExpansionCreate,
    ExpansionRead,
    ExpansionUpdate,
    IssueCreate,
    IssueRead,
    IssueResolve,
    IssueUpdate,
)
from outrider_tracker.stage.api import NOT_FOUND, Actor, Engagement
from outrider_tracker.transition import FinalState

router = APIRouter(prefix="/v1/engagements", tags=["issues"])


@router.get("/{engagement_id}/issues", summary="The issues log, open first", responses=NOT_FOUND)
async def list_issues(engagement: Engagement, request: Request) -> list[IssueRead]:
    return await service.get_issues(request.app.state.db.pool, engagement_id=engagement.id)


@router.post("/{engagement_id}/issues", status_code=201, summary="Log an issue", responses=NOT_FOUND)
async def create_issue(issue_in: IssueCreate, engagement: Engagement, actor: Actor, request: Request) -> IssueRead:
    issue = await service.create_issue(request.app.state.db.pool, engagement_id=engagement.id, issue_in=issue_in,
                                       actor=actor)  # fmt: skip
    request.app.state.outbox_wake.set()
    return issue


@router.patch("/{engagement_id}/issues/{issue_id}", summary="Change an issue", responses=NOT_FOUND)
async def update_issue(
    issue_id: UUID, issue_in: IssueUpdate, engagement: Engagement, actor: Actor, request: Request
) -> IssueRead:
    change = service.update_issue(
        request.app.state.db.pool, engagement_id=engagement.id, issue_id=issue_id, issue_in=issue_in, actor=actor
    )
    return await changed(request, change, missing=f"issue {issue_id} not found")


@router.post(
    "/{engagement_id}/issues/{issue_id}/resolve",
    summary="Resolve an issue (again the same way: 200, nothing recorded)",
    responses={**NOT_FOUND, 409: {"description": "Already resolved another way"}},
)
async def resolve_issue(
    issue_id: UUID, resolve: IssueResolve, engagement: Engagement, actor: Actor, request: Request
) -> IssueRead:
    change = service.resolve_issue(
        request.app.state.db.pool, engagement_id=engagement.id, issue_id=issue_id, resolve=resolve, actor=actor
    )
    return await changed(request, change, missing=f"issue {issue_id} not found", conflict=FinalState)


@router.get("/{engagement_id}/expansions", summary="Expansion opportunities", responses=NOT_FOUND)
async def list_expansions(engagement: Engagement, request: Request) -> list[ExpansionRead]:
    return await service.get_expansions(request.app.state.db.pool, engagement_id=engagement.id)


@router.post("/{engagement_id}/expansions", status_code=201, summary="Record an expansion opportunity",
             responses=NOT_FOUND)  # fmt: skip
async def create_expansion(
    expansion_in: ExpansionCreate, engagement: Engagement, actor: Actor, request: Request
) -> ExpansionRead:
    expansion = await service.create_expansion(request.app.state.db.pool, engagement_id=engagement.id,
                                               expansion_in=expansion_in, actor=actor)  # fmt: skip
    request.app.state.outbox_wake.set()
    return expansion


@router.patch("/{engagement_id}/expansions/{expansion_id}", summary="Change an expansion opportunity (won, lost…)",
              responses=NOT_FOUND)  # fmt: skip
async def update_expansion(
    expansion_id: UUID, expansion_in: ExpansionUpdate, engagement: Engagement, actor: Actor, request: Request
) -> ExpansionRead:
    change = service.update_expansion(
        request.app.state.db.pool,
        engagement_id=engagement.id,
        expansion_id=expansion_id,
        expansion_in=expansion_in,
        actor=actor,
    )
    return await changed(request, change, missing=f"expansion {expansion_id} not found")
