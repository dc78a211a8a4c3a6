"""Portfolio schemas: the whole book of engagements at a glance."""

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field


class StageCount(BaseModel):
    """How many active engagements sit in one stage of one playbook."""

    playbook_id: str
    stage: str
    count: int


class StalledEngagement(BaseModel):
    """An engagement in its stage longer than the playbook expects, or with no change for OUTRIDER_STALLED_DAYS."""

    id: UUID
    name: str
    stage: str
    days_in_stage: float
    expected_days: int
    days_since_change: float = Field(description="Days since the newest entry of its audit trail.")
    why: list[Literal["stage_overdue", "no_change"]] = Field(
        description="stage_overdue: longer in its stage than the playbook expects; no_change: nothing changed for "
        "OUTRIDER_STALLED_DAYS."
    )


class Portfolio(BaseModel):
    """Counts per stage, overdue touchpoints and stalled engagements."""

    by_stage: list[StageCount]
    overdue_touchpoints: int
    stalled: list[StalledEngagement]
