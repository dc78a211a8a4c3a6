"""Portfolio schemas: the whole book of engagements at a glance."""

from uuid import UUID

from pydantic import BaseModel


class StageCount(BaseModel):
    """How many active engagements sit in one stage of one playbook."""

    playbook_id: str
    stage: str
    count: int


class StalledEngagement(BaseModel):
    """An engagement in its stage longer than the playbook expects."""

    id: UUID
    name: str
    stage: str
    days_in_stage: float
    expected_days: int


class Portfolio(BaseModel):
    """Counts per stage, overdue touchpoints and stalled engagements."""

    by_stage: list[StageCount]
    overdue_touchpoints: int
    stalled: list[StalledEngagement]
