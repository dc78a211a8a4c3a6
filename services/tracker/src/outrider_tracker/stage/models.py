"""Schemas of an engagement's stage: checklist, advancing, status."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from outrider_tracker.body import Body
from outrider_tracker.engagement.models import EngagementRead
from outrider_tracker.issue.models import IssueRead
from outrider_tracker.risk.models import RiskRead
from outrider_tracker.stats.models import KeyStats
from outrider_tracker.touchpoint.models import TouchpointRead


class ChecklistItemState(BaseModel):
    """A checklist item of the current stage and whether (and how) it is done."""

    id: str
    title: str
    auto: str | None = Field(description="Set when the data completes the item, not a person.")
    done: bool
    done_at: datetime | None = None
    done_by: str | None = None
    note: str | None = None
    satisfied_by: str | None = Field(None, description="For automatic items: what in the data satisfied it.")
    missing: list[str] = Field(
        default_factory=list, description="For automatic items not done: the log types the data still lacks."
    )


class ChecklistUpdate(Body):
    """Tick or untick a manual checklist item."""

    done: bool
    note: str | None = Field(None, max_length=2000)


class AdvanceRequest(Body):
    """Move to the next stage; `force` skips unmet exit criteria and needs a `reason`."""

    force: bool = False
    reason: str | None = Field(None, min_length=1, max_length=2000)


class StageBlocked(BaseModel):
    """Why an engagement cannot leave its stage."""

    detail: str
    missing: list[str]


class StageView(BaseModel):
    """Where the engagement is in its playbook."""

    id: str
    name: str
    entered_at: datetime
    days_in_stage: float
    expected_days: int
    stalled: bool = Field(description="In the stage longer than the playbook expects.")
    next_stage: str | None


class FindingSummary(BaseModel):
    """A finding the analyzer raised on the engagement's logs."""

    rule: str
    log_type: str
    key: str
    window_start: datetime
    figures: dict[str, float]


class EngagementStatus(BaseModel):
    """Where is this customer: stage, what blocks the next one, what their logs say."""

    engagement: EngagementRead
    playbook: str
    stage: StageView
    checklist: list[ChecklistItemState]
    progress: float = Field(description="Share of the stage's checklist done, 0-1.")
    blocking: list[str] = Field(description="Exit criteria not yet met.")
    requests_counted: int
    top_keys: list[KeyStats] = Field(description="The five keys with the highest score over all logs.")
    findings: list[FindingSummary]
    next_touchpoint: TouchpointRead | None
    overdue_touchpoints: list[TouchpointRead]
    open_risks: list[RiskRead]
    open_issues: list[IssueRead]
    health: int = Field(ge=0, le=100, description="100 minus overdue touchpoints, high risks, findings, stalling.")
    health_reasons: list[str]


class StageChange(BaseModel):
    """The result of advancing."""

    engagement_id: UUID
    from_stage: str
    to_stage: str
    forced: bool
    missing: list[str]
