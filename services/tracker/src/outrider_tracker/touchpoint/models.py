"""Touchpoint schemas."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field


class TouchpointCreate(BaseModel):
    """A call to schedule with the customer."""

    title: str = Field(min_length=1, max_length=200, examples=["Discovery follow-up: log findings"])
    scheduled_at: AwareDatetime
    attendees: list[str] = Field(default_factory=list, max_length=50)


class TouchpointHeld(BaseModel):
    """Record that a touchpoint took place; optionally schedule the next one."""

    notes: str | None = Field(None, max_length=20_000)
    held_at: AwareDatetime | None = Field(None, description="Defaults to now.")
    next_scheduled_at: AwareDatetime | None = Field(None, description="Schedules the next touchpoint.")


class TouchpointRead(BaseModel):
    """A touchpoint as the API returns it."""

    id: UUID
    engagement_id: UUID
    title: str
    scheduled_at: datetime
    attendees: list[str]
    status: Literal["scheduled", "held", "cancelled"]
    held_at: datetime | None
    notes: str | None
