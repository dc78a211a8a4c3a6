"""The dates and times the tracker accepts, one rule for every field and query parameter that takes one."""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

# Engagements run for weeks to a year or two: a schedule further ahead is a typo or a placeholder (9999-12-31), and
# the notifier plans reminders from it. Only an upper bound, so what was accepted stays valid as time passes.
HORIZON_YEARS = 5
HORIZON = timedelta(days=round(HORIZON_YEARS * 365.25))
TIMESTAMP_RULE = "With a time zone (`Z` or an offset); from 1970 to the end of 9998 once in UTC."
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive
SCHEDULE_RULE = f"At most {HORIZON_YEARS} years ahead. {TIMESTAMP_RULE}"


def in_calendar_in_utc(value: datetime) -> datetime:
    """Refuse a time outside 1970-9998 once in UTC. Past the calendar (`0001-01-01T00:00:00+14:00`) it fails in
    PostgreSQL, which stores and compares in UTC, or in the arithmetic of whoever reads it back; at its very edges
    asyncpg stores year 1 and year 9999's last instant as -infinity/infinity, which read back without a time zone (a
    touchpoint at 0001-01-01T00:00:00Z broke the engagement's status view with a 500 and was dead-lettered by the
    notifier). No engagement has a date before 1970 or in 9999."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"{value.isoformat()} falls outside 1970-9998 once in UTC")
    return value


def _horizon_end() -> datetime:
    return datetime.now(UTC) + HORIZON


def within_horizon(value: datetime) -> datetime:
    """Refuse a schedule more than `HORIZON_YEARS` years ahead."""
    if value > (end := _horizon_end()):
        raise ValueError(
            f"a schedule must be at most {HORIZON_YEARS} years ahead (until {end:%Y-%m-%d}), not {value.isoformat()}"
        )
    return value


def date_within_horizon(value: date) -> date:
    """`within_horizon` for a day."""
    if value > (end := _horizon_end().date()):
        raise ValueError(
            f"a schedule must be at most {HORIZON_YEARS} years ahead (until {end}), not {value.isoformat()}"
        )
    return value


Timestamp = Annotated[AwareDatetime, AfterValidator(in_calendar_in_utc)]
"""A time a client sends (`TIMESTAMP_RULE`): a time without a zone means a different instant to each customer."""
ScheduledTime = Annotated[Timestamp, AfterValidator(within_horizon)]
"""When something is to happen (`SCHEDULE_RULE`)."""
ScheduledDate = Annotated[date, AfterValidator(date_within_horizon)]
"""The day by which something is to happen, at most `HORIZON_YEARS` years ahead."""
