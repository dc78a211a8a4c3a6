"""Risk log schemas."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from outrider_tracker.body import Body
from outrider_tracker.patch import not_null

Level = Literal["low", "medium", "high"]
RiskStatus = Literal["open", "mitigated", "closed"]


class RiskCreate(Body):
    """A risk to the engagement."""

    title: str = Field(min_length=1, max_length=500)
    likelihood: Level
    impact: Level
    mitigation: str | None = Field(None, max_length=5000)
    owner: str | None = Field(None, max_length=200)


class RiskUpdate(Body):
    """Fields to change; `status` mitigated or closed takes the risk off the open list (and out of the health score)."""

    likelihood: Level | None = None
    impact: Level | None = None
    mitigation: str | None = Field(None, max_length=5000)
    owner: str | None = Field(None, max_length=200)
    status: RiskStatus | None = None

    _not_null = field_validator("likelihood", "impact", "status")(not_null)


class FindingPromotion(Body):
    """Which finding to promote to the risk log (the newest window of that rule and key)."""

    rule: str = Field(examples=["slow_endpoint"])
    key: str = Field(examples=["Projects::MergeRequestsController#show"])
    likelihood: Level = "high"
    impact: Level = "medium"
    owner: str | None = None


class RiskRead(BaseModel):
    """A risk as the API returns it."""

    id: UUID
    engagement_id: UUID
    title: str
    likelihood: Level
    impact: Level
    mitigation: str | None
    owner: str | None
    status: RiskStatus
    source_kind: str | None
    source_key: str | None
    created_at: datetime
