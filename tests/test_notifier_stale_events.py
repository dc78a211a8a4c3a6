"""Events read after a newer event of their subject (dead letters replayed once their cause is fixed) change nothing:
no reminder for a call that was cancelled, no old time brought back; a redelivered newest event still does as before.
An edit that does not move a call does not move its reminders either.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest

from outrider.slack_local import LocalSlack
from outrider_common.db import Database
from outrider_common.events import EngagementEvent
from outrider_notifier.app import MIGRATIONS
from outrider_notifier.handlers import on_engagement_event
from outrider_notifier.reminders import STAGE, subject_of
from outrider_notifier.settings import NotifierSettings
from tests.stack import running_services
from tests.test_notifier import notifier_settings, rows, send, until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


BASE = datetime.now(UTC).replace(microsecond=0)


def event(eid: UUID, type: str, second: int, **data: object) -> bytes:
    """An event of `eid` that occurred `second` seconds after BASE: the order the tracker recorded them in."""
    return EngagementEvent(event_id=uuid4(), type=type, engagement_id=eid, occurred_at=BASE + timedelta(seconds=second),
                           data=data).model_dump_json().encode()  # fmt: skip


def test_each_event_that_plans_or_cancels_reminders_names_its_subject() -> None:
    eid = uuid4()

    def subject(type: str, **data: object) -> str | None:
        return subject_of(EngagementEvent.model_validate_json(event(eid, type, 0, **data)))

    assert [subject(t, touchpoint_id="t") for t in ("touchpoint.scheduled", "touchpoint.updated", "touchpoint.held",
                                                    "touchpoint.cancelled")] == ["t"] * 4  # fmt: skip
    assert [subject(t, handoff_id="h") for t in ("handoff.requested", "handoff.accepted")] == ["h"] * 2
    assert [subject(t, review_id="r") for t in ("tech_review.requested", "tech_review.decided")] == ["r"] * 2
    assert [subject(t) for t in ("engagement.created", "stage.advanced")] == [STAGE] * 2
    assert [subject(t) for t in ("engagement.updated", "exit_criterion.checked")] == [None] * 2


def test_events_older_than_the_newest_of_their_subject_change_nothing_and_the_newest_again_is_harmless(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    eid = uuid4()
    far = BASE + timedelta(days=3)  # every touchpoint reminder falls days away: none is posted during the test
    a, b, c = (far + timedelta(hours=h) for h in (0, 1, 2))

    def tp(type: str, second: int, touchpoint: str, at: datetime | None = None) -> bytes:
        schedule = {} if at is None else {"title": f"Call {touchpoint}", "scheduled_at": at.isoformat()}
        return event(eid, type, second, touchpoint_id=touchpoint, **schedule)

    scheduled_then_cancelled = tp("touchpoint.scheduled", 1, "again", a)
    moved_to_c = tp("touchpoint.updated", 3, "moved", c)
    stale_stage = event(eid, "stage.advanced", 2, **{"from": "scoping", "to": "pilot", "expected_days": 9})
    events = [
        event(eid, "engagement.created", 0, name="Umbrella", customer="Umbrella", stage="scoping", expected_days=5),
        # Dead-lettered, replayed after what came later: the touchpoint was cancelled (held) before it was scheduled.
        tp("touchpoint.cancelled", 2, "cancelled"),
        tp("touchpoint.scheduled", 1, "cancelled", a),
        tp("touchpoint.held", 2, "held"),
        tp("touchpoint.scheduled", 1, "held", a),
        # What a replayed copy of an event already applied once does (Kafka offsets reset, a replay run twice).
        scheduled_then_cancelled,
        tp("touchpoint.cancelled", 2, "again"),
        scheduled_then_cancelled,
        # Moved to b, then to c; the move to b read again after the move to c; then the move to c redelivered.
        tp("touchpoint.scheduled", 1, "moved", a),
        moved_to_c,
        tp("touchpoint.updated", 2, "moved", b),
        moved_to_c,
        event(eid, "handoff.accepted", 2, handoff_id="h1"),
        event(eid, "handoff.requested", 1, handoff_id="h1", from_team="SA", to_team="CSM"),
        event(eid, "tech_review.decided", 2, review_id="r1", decision="approved"),
        event(eid, "tech_review.requested", 1, review_id="r1", decision_needed_by=str(BASE.date() + timedelta(days=5))),
        # The engagement moved to rollout; its move to pilot, earlier, read after.
        event(eid, "stage.advanced", 3, **{"from": "pilot", "to": "rollout", "expected_days": 7}),
        stale_stage,
        tp("touchpoint.scheduled", 4, "last", a),  # read last on the partition: everything before it is applied
    ]  # fmt: skip
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("notifier",), settings=notifier_settings(slack),
    ):  # fmt: skip
        send(kafka_bootstrap, f"{topic_prefix}engagement.events", str(eid).encode(), events)
        until(lambda: rows(database_dsn, "SELECT FROM reminders WHERE subject = 'last'"), "the last event")
        log = (tmp_path / "notifier.log").read_text()
    stored = rows(database_dsn, "SELECT kind, subject, status, due_at, payload, idempotency_key FROM reminders")
    pending = sorted((r["subject"], r["kind"], r["due_at"]) for r in stored
                     if r["status"] == "pending" and r["kind"] != "stage_changed")  # fmt: skip
    day, grace = timedelta(hours=24), timedelta(hours=1)  # the default lead and overdue grace
    assert pending == [
        ("last", "touchpoint_due", a - day), ("last", "touchpoint_overdue", a + grace),
        ("moved", "touchpoint_due", c - day), ("moved", "touchpoint_overdue", c + grace),
        (STAGE, "stage_stalled", BASE + timedelta(seconds=3, days=7)),  # rollout's, not pilot's nor scoping's
    ]  # fmt: skip
    # Nothing was ever planned for the cancelled and held calls, the hand-off, the review, or the time b.
    subjects = {r["subject"] for r in stored}
    assert not subjects & {"cancelled", "held", "h1", "r1"}
    assert not [
        r for r in stored if r["subject"] == "moved" and json.loads(r["payload"])["scheduled_at"] == b.isoformat()
    ]
    stale_stage_id = json.loads(stale_stage)["event_id"]
    assert not [r for r in stored if stale_stage_id in r["idempotency_key"]]  # no "moved to pilot" message either
    again = sorted((r["kind"], r["status"]) for r in stored if r["subject"] == "again")
    assert again == [("touchpoint_due", "cancelled"), ("touchpoint_overdue", "cancelled")]
    assert log.count("stale event changes nothing") == 7  # each read after a newer event of its subject


def test_engagement_details_read_after_newer_ones_do_not_undo_them(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, slack: LocalSlack
) -> None:
    eid = uuid4()
    created = event(eid, "engagement.created", 0, name="Umbrella", customer="Umbrella", slack_channel="#old")
    events = [
        created,
        event(eid, "engagement.updated", 1, name="Umbrella Corp"),
        event(eid, "engagement.updated", 3, slack_channel="#new", status="paused"),
        event(eid, "engagement.updated", 2, slack_channel="#mid", status="active"),  # dead-lettered, replayed late
        created,  # replayed again
        event(eid, "touchpoint.scheduled", 4, touchpoint_id="last", title="Call",
              scheduled_at=(BASE + timedelta(days=3)).isoformat()),  # read last: everything before it is applied
    ]  # fmt: skip
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("notifier",), settings=notifier_settings(slack),
    ):  # fmt: skip
        send(kafka_bootstrap, f"{topic_prefix}engagement.events", str(eid).encode(), events)
        until(lambda: rows(database_dsn, "SELECT FROM reminders WHERE subject = 'last'"), "the last event")
    (kept,) = rows(database_dsn, f"SELECT * FROM notifier_engagements WHERE engagement_id = '{eid}'")
    assert (kept["name"], kept["customer"], kept["slack_channel"], kept["status"]) == (
        "Umbrella Corp", "Umbrella", "#new", "paused"
    )  # fmt: skip


@pytest.fixture
async def pool(database_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    db = Database(database_dsn, MIGRATIONS)
    await db.open()
    yield db.pool
    await db.close()


async def apply(pool: asyncpg.Pool, *events: bytes) -> None:
    """Hand the notifier's subscriber `events` in this order, as it would read them."""
    for raw in events:
        await on_engagement_event(EngagementEvent.model_validate_json(raw), pool, NotifierSettings(), asyncio.Event())


async def test_a_replayed_event_older_than_one_applied_while_the_engagement_was_closed_changes_nothing(
    pool: asyncpg.Pool,
) -> None:
    eid = uuid4()
    call = {"touchpoint_id": "held", "title": "Call", "scheduled_at": (BASE + timedelta(days=3)).isoformat()}
    await apply(
        pool,
        event(eid, "engagement.created", 0, name="Umbrella", customer="Umbrella"),
        event(eid, "engagement.updated", 2, status="closed"),
        event(eid, "touchpoint.held", 3, touchpoint_id="held"),  # while closed
        event(eid, "engagement.updated", 4, status="active"),  # reopened: the held call is not announced again
        event(eid, "touchpoint.scheduled", 1, **call),  # dead-lettered, replayed after all that
    )
    assert await pool.fetch("SELECT kind, status FROM reminders WHERE subject = 'held'") == []


async def test_an_edit_that_does_not_move_a_call_keeps_its_overdue_time_a_move_into_the_past_counts_from_the_move(
    pool: asyncpg.Pool,
) -> None:
    eid, grace = uuid4(), timedelta(hours=1)  # the default overdue grace
    at, earlier = BASE + timedelta(hours=1), BASE + timedelta(minutes=30)

    def call(title: str, when: datetime) -> dict[str, object]:
        return {"touchpoint_id": "t", "title": title, "scheduled_at": when.isoformat(), "reminder_lead_hours": 24}

    overdue = ("SELECT due_at, payload->>'title' AS title FROM reminders WHERE kind = 'touchpoint_overdue'"
               " AND status = 'pending'")  # fmt: skip
    await apply(pool, event(eid, "engagement.created", 0, name="Umbrella", customer="Umbrella"),
                event(eid, "touchpoint.scheduled", 1, **call("Call", at)))  # fmt: skip
    assert [tuple(r) for r in await pool.fetch(overdue)] == [(at + grace, "Call")]
    # Fifty minutes after the call, someone fixes its title (or attendees): still overdue an hour after it.
    await apply(pool, event(eid, "touchpoint.updated", 6600, **call("Kick-off", at)))
    assert [tuple(r) for r in await pool.fetch(overdue)] == [(at + grace, "Kick-off")]
    # Moved into the past, and back: it is overdue only a grace after the move, time to mark it held first.
    await apply(pool, event(eid, "touchpoint.updated", 6700, **call("Kick-off", earlier)))
    assert [tuple(r) for r in await pool.fetch(overdue)] == [(BASE + timedelta(seconds=6700) + grace, "Kick-off")]
    await apply(pool, event(eid, "touchpoint.updated", 6800, **call("Kick-off", at)))
    assert [tuple(r) for r in await pool.fetch(overdue)] == [(BASE + timedelta(seconds=6800) + grace, "Kick-off")]
