"""Touchpoint schemas."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, field_validator

from outrider_tracker.body import Body
from outrider_tracker.patch import not_null
from outrider_tracker.timestamps import SCHEDULE_RULE, TIMESTAMP_RULE, ScheduledTime, Timestamp

# The caller's clock may run a little ahead of the tracker's; further ahead, the touchpoint has not taken place yet.
CLOCK_SKEW_MINUTES = 5
CLOCK_SKEW = timedelta(minutes=CLOCK_SKEW_MINUTES)
HELD_RULE = f"Not in the future (at most {CLOCK_SKEW_MINUTES} minutes ahead of the tracker's clock). {TIMESTAMP_RULE}"


def not_in_future(value: datetime) -> datetime:
    """Refuse a time that has not come yet, beyond `CLOCK_SKEW`."""
    if value > (latest := datetime.now(UTC) + CLOCK_SKEW):
        raise ValueError(
            f"a touchpoint cannot be held in the future: {value.isoformat()} is more than {CLOCK_SKEW_MINUTES} minutes"
            f" after the tracker's clock (latest {latest:%Y-%m-%dT%H:%M:%SZ})"
        )
    return value


HeldTime = Annotated[Timestamp, AfterValidator(not_in_future)]
"""When something took place (`HELD_RULE`)."""


class TouchpointCreate(Body):
    """A call to schedule with the customer."""

    title: str = Field(min_length=1, max_length=200, examples=["Discovery follow-up: log findings"])
    scheduled_at: ScheduledTime = Field(description=f"When it takes place. {SCHEDULE_RULE}")
    attendees: list[str] = Field(default_factory=list, max_length=50)


class TouchpointUpdate(Body):
    """Change a scheduled touchpoint; a new time re-plans its reminders."""

    title: str | None = Field(None, min_length=1, max_length=200)
    scheduled_at: ScheduledTime | None = Field(None, description=f"A new time. {SCHEDULE_RULE}")
    attendees: list[str] | None = Field(None, max_length=50)

    _not_null = field_validator("title", "scheduled_at", "attendees")(not_null)


class TouchpointCancel(Body):
    """Why the touchpoint will not take place (its reminders are withdrawn)."""

    reason: str = Field(min_length=1, max_length=2000)


class TouchpointHeld(Body):
    """Record that a touchpoint took place; optionally schedule the next one."""

    notes: str | None = Field(None, max_length=20_000)
    held_at: HeldTime | None = Field(None, description=f"Defaults to now. {HELD_RULE}")
    next_scheduled_at: ScheduledTime | None = Field(None, description=f"Schedules the next touchpoint. {SCHEDULE_RULE}")


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
