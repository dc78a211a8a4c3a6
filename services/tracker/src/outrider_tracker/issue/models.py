"""Issues log and expansion opportunity schemas."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import ConfigDict, Field, field_validator

from outrider_common.http import INT32_MAX
from outrider_tracker.body import Body
from outrider_tracker.patch import not_null

Severity = Literal["low", "medium", "high", "critical"]


class IssueCreate(Body):
    """Something going wrong in the engagement."""

    title: str = Field(min_length=1, max_length=500)
    severity: Severity
    owner: str | None = Field(None, max_length=200)


class IssueUpdate(Body):
    """Fields to change (resolve with POST …/resolve)."""

    title: str | None = Field(None, min_length=1, max_length=500)
    severity: Severity | None = None
    owner: str | None = Field(None, max_length=200)

    _not_null = field_validator("title", "severity")(not_null)


class IssueResolve(Body):
    """How it was resolved."""

    resolution: str = Field(min_length=1, max_length=5000)


class IssueRead(IssueCreate):
    """An issue as the API returns it."""

    model_config = ConfigDict(extra="ignore")  # read from rows, not a request

    id: UUID
    engagement_id: UUID
    status: Literal["open", "resolved"]
    resolution: str | None
    created_at: datetime
    resolved_at: datetime | None


class ExpansionCreate(Body):
    """A chance to grow the account."""

    title: str = Field(min_length=1, max_length=500)
    description: str | None = Field(None, max_length=5000)
    potential_users: int | None = Field(None, ge=0, le=INT32_MAX)


class ExpansionRead(ExpansionCreate):
    """An expansion opportunity as the API returns it."""

    model_config = ConfigDict(extra="ignore")  # read from rows, not a request

    id: UUID
    engagement_id: UUID
    status: Literal["open", "won", "lost"]
    created_at: datetime


class ExpansionUpdate(Body):
    """Fields to change; `status` won or lost closes the opportunity."""

    title: str | None = Field(None, min_length=1, max_length=500)
    description: str | None = Field(None, max_length=5000)
    potential_users: int | None = Field(None, ge=0, le=INT32_MAX)
    status: Literal["open", "won", "lost"] | None = None

    _not_null = field_validator("title", "status")(not_null)
