"""Hand-off and tech-review schemas."""

from datetime import date, datetime
from typing import Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from outrider_tracker.body import Body
from outrider_tracker.timestamps import HORIZON_YEARS, ScheduledDate

Team = Literal["pre_sales", "implementation", "technical_advisor", "customer_success"]
Requirement = Literal["new", "existing"]


class HandoffCreate(Body):
    """Pass the engagement from one team to another."""

    from_team: Team
    to_team: Team
    notes: str | None = Field(None, max_length=20_000)

    @model_validator(mode="after")
    def _another_team(self) -> Self:
        if self.from_team == self.to_team:
            raise ValueError(f"from_team and to_team are both '{self.to_team}': a hand-off goes to another team")
        return self


class HandoffRead(BaseModel):
    """A hand-off as the API returns it."""

    id: UUID
    engagement_id: UUID
    from_team: Team
    to_team: Team
    notes: str | None
    status: Literal["pending", "accepted"]
    created_at: datetime
    accepted_at: datetime | None


class TechReviewCreate(Body):
    """A gap that needs a product or engineering decision."""

    gap: str = Field(min_length=1, max_length=5000)
    decision_needed_by: ScheduledDate = Field(description=f"At most {HORIZON_YEARS} years ahead.")
    requirement: Requirement
    customer_expectation: str = Field(min_length=1, max_length=5000)
    consequence_if_unmet: str = Field(min_length=1, max_length=5000)


class TechReviewDecision(Body):
    """The decision on a tech-review request."""

    decision: str = Field(min_length=1, max_length=5000)


class TechReviewRead(TechReviewCreate):
    """A tech-review request as the API returns it."""

    model_config = ConfigDict(extra="ignore")  # read from rows, not a request

    decision_needed_by: date  # as stored: a request is not judged again by today's horizon
    id: UUID
    engagement_id: UUID
    status: Literal["open", "decided"]
    decision: str | None
    created_at: datetime
    decided_at: datetime | None
