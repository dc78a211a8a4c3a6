"""An engagement reopened gets back the reminders its close ended — hand-off nudges, tech-review reminders and the
stalled-stage reminder as well as its touchpoints' — from the events the tracker announces on reopening it, due when
they were due; what was requested or entered while it was closed is planned, and what was already posted is not
posted again. The notifier's handler on a real PostgreSQL, in process."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from outrider_common.db import Database
from outrider_common.events import EngagementEvent
from outrider_notifier.app import MIGRATIONS
from outrider_notifier.handlers import on_engagement_event
from outrider_notifier.reminders import STAGE, subject_of
from outrider_notifier.settings import NotifierSettings

pytestmark = [pytest.mark.postgres]

T0 = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


@pytest.fixture
async def pool(database_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    db = Database(database_dsn, MIGRATIONS)
    await db.open()
    yield db.pool
    await db.close()


def ev(eid: UUID, type: str, second: float, **data: Any) -> EngagementEvent:
    """An event of `eid` that occurred `second` seconds after T0."""
    return EngagementEvent(event_id=uuid4(), type=type, engagement_id=eid, occurred_at=T0 + timedelta(seconds=second),
                           data=data)  # fmt: skip


async def apply(pool: asyncpg.Pool, *events: EngagementEvent) -> None:
    for event in events:
        await on_engagement_event(event, pool, NotifierSettings(), asyncio.Event())


async def pending(pool: asyncpg.Pool, eid: UUID) -> list[tuple[str, str, datetime]]:
    rows = await pool.fetch(
        "SELECT kind, subject, due_at FROM reminders WHERE engagement_id = $1 AND status = 'pending'", eid
    )
    return sorted((r["kind"], r["subject"], r["due_at"]) for r in rows)


def test_the_events_a_reopening_restates_name_their_subject() -> None:
    eid = uuid4()
    assert subject_of(ev(eid, "handoff.pending", 0, handoff_id="h")) == "h"
    assert subject_of(ev(eid, "tech_review.open", 0, review_id="r")) == "r"
    assert subject_of(ev(eid, "stage.current", 0, stage="pilot")) == STAGE


async def test_a_reopened_engagement_gets_back_its_hand_off_review_and_stage_reminders(pool: asyncpg.Pool) -> None:
    eid = uuid4()
    handoff = {"handoff_id": "h1", "from": "pre_sales", "to": "implementation"}
    review = {"review_id": "r1", "gap": "Geo", "decision_needed_by": str((T0 + 10 * DAY).date())}
    await apply(pool,
        ev(eid, "engagement.created", 0, name="N", customer="C", stage="scoping", expected_days=5),
        ev(eid, "handoff.requested", 60, **handoff),
        ev(eid, "tech_review.requested", 120, **review),
    )  # fmt: skip
    before = await pending(pool, eid)
    # By hand: nudged 2 days after the request, reminded 2 days before the decision, stalled 5 days after creation.
    needed_by = datetime.combine((T0 + 10 * DAY).date(), datetime.min.time(), UTC)
    assert before == sorted(
        [
            ("handoff_pending", "h1", T0 + timedelta(seconds=60) + 2 * DAY),
            ("tech_review_due", "r1", needed_by - 2 * DAY),
            ("stage_stalled", STAGE, T0 + 5 * DAY),
        ]
    )
    # Closed a day later, reopened a day after that: the tracker announces what is still open, as it is.
    await apply(pool,
        ev(eid, "engagement.updated", DAY.total_seconds(), status="closed", version=2),
        ev(eid, "engagement.updated", 2 * DAY.total_seconds(), status="active", version=3),
        ev(eid, "handoff.pending", 2 * DAY.total_seconds() + 1, **handoff,
           requested_at=(T0 + timedelta(seconds=60)).isoformat()),
        ev(eid, "tech_review.open", 2 * DAY.total_seconds() + 1, **review),
        ev(eid, "stage.current", 2 * DAY.total_seconds() + 1, stage="scoping", expected_days=5,
           stage_entered_at=T0.isoformat()),
    )  # fmt: skip
    assert await pending(pool, eid) == before  # revived, due when they were due
    count = "SELECT count(*) FROM reminders WHERE engagement_id = $1"
    assert await pool.fetchval(count, eid) == 3  # not planned a second time


async def test_what_happened_while_closed_is_planned_on_reopening_and_what_was_posted_stays_posted(
    pool: asyncpg.Pool,
) -> None:
    eid = uuid4()
    await apply(pool, ev(eid, "engagement.created", 0, name="N", customer="C", stage="scoping", expected_days=5))
    await pool.execute("UPDATE reminders SET status = 'sent' WHERE engagement_id = $1", eid)  # the stall was posted
    closed, reopened = 3 * DAY.total_seconds(), 4 * DAY.total_seconds()
    handoff = {"handoff_id": "h2", "from": "implementation", "to": "customer_success"}
    review = {"review_id": "r2", "gap": "HA", "decision_needed_by": str((T0 + 20 * DAY).date())}
    await apply(pool,
        ev(eid, "engagement.updated", closed, status="closed", version=2),
        # While closed: ignored by the notifier.
        ev(eid, "handoff.requested", closed + 60, **handoff),
        ev(eid, "tech_review.requested", closed + 120, **review),
        ev(eid, "engagement.updated", reopened, status="active", version=3),
        ev(eid, "handoff.pending", reopened + 1, **handoff,
           requested_at=(T0 + timedelta(seconds=closed + 60)).isoformat()),
        ev(eid, "tech_review.open", reopened + 1, **review),
        ev(eid, "stage.current", reopened + 1, stage="scoping", expected_days=5, stage_entered_at=T0.isoformat()),
    )  # fmt: skip
    needed_by = datetime.combine((T0 + 20 * DAY).date(), datetime.min.time(), UTC)
    assert await pending(pool, eid) == sorted([
        ("handoff_pending", "h2", T0 + timedelta(seconds=closed + 60) + 2 * DAY),
        ("tech_review_due", "r2", needed_by - 2 * DAY),
    ])  # fmt: skip
    stalled = "SELECT status FROM reminders WHERE engagement_id = $1 AND kind = 'stage_stalled'"
    assert [r["status"] for r in await pool.fetch(stalled, eid)] == ["sent"]

    # A stage entered while closed gets its stalled reminder, due after the stage's days from its entry.
    await apply(pool,
        ev(eid, "engagement.updated", reopened + 10, status="closed", version=4),
        ev(eid, "stage.advanced", reopened + 20, **{"from": "scoping", "to": "pilot", "expected_days": 9}),
        ev(eid, "engagement.updated", reopened + 30, status="active", version=5),
        ev(eid, "stage.current", reopened + 31, stage="pilot", expected_days=9,
           stage_entered_at=(T0 + timedelta(seconds=reopened + 20)).isoformat()),
    )  # fmt: skip
    got = [p for p in await pending(pool, eid) if p[0] == "stage_stalled"]
    assert got == [("stage_stalled", STAGE, T0 + timedelta(seconds=reopened + 20) + 9 * DAY)]
