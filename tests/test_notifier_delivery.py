"""The notifier's dispatcher in process against real PostgreSQL and the local Slack Web API: what a slow batch, a
group with one unconfirmed finding, a run of 429s and a touchpoint cancelled while its reminder is being sent do to
claims, duplicates and attempts; which touchpoints cannot wait for the daily digest."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from outrider.slack_local import LocalSlack
from outrider_common.db import Database
from outrider_common.events import EngagementEvent
from outrider_notifier import store
from outrider_notifier.app import MIGRATIONS
from outrider_notifier.dispatch import DIGEST_KINDS, Dispatcher, urgent_before
from outrider_notifier.handlers import on_engagement_event
from outrider_notifier.reminders import Planned
from outrider_notifier.settings import NotifierSettings
from outrider_notifier.slack import SlackWebApi

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
async def pool(database_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    db = Database(database_dsn, MIGRATIONS)
    await db.open()
    yield db.pool
    await db.close()


def dispatcher(pool: asyncpg.Pool, slack: LocalSlack, **settings: Any) -> Dispatcher:
    sender = SlackWebApi("xoxb-test", slack.api_url, timeout_s=settings.pop("slack_timeout_s", 10))
    return Dispatcher(pool, sender, NotifierSettings(**settings))


async def until(check: Callable[[], Any], what: str, within_s: float = 30) -> Any:
    deadline = time.monotonic() + within_s
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return result


def stage_changed(n: int) -> Planned:
    return Planned(f"stage_changed:{n}", "stage_changed", f"stage-{n}", datetime.now(UTC) - timedelta(seconds=1),
                   {"from": "scoping", "to": f"stage {n}"})  # fmt: skip


def finding(engagement_id: UUID, summary: str) -> Planned:
    fid = str(uuid4())
    payload = {"finding_id": fid, "engagement_id": str(engagement_id), "rule": "slow_endpoint",
               "log_type": "production_json", "key": "GET /checkout", "window_start": "2024-01-01T00:00:00+00:00",
               "window_end": "2024-01-01T00:05:00+00:00", "summary": summary, "figures": {}}  # fmt: skip
    return Planned(f"finding:{fid}", "finding", fid, datetime.now(UTC) - timedelta(seconds=1), payload)


async def make_due(pool: asyncpg.Pool) -> None:
    """The time of every pending reminder's next attempt has come (instead of waiting out backoff)."""
    await pool.execute("UPDATE reminders SET next_attempt_at = now() WHERE status = 'pending'")


async def test_a_second_replica_never_posts_a_batch_the_first_is_still_working_through(
    pool: asyncpg.Pool, slack: LocalSlack
) -> None:
    slack.delay_s = 0.6  # five posts take 3 s, twice stale_sending_s, though no notifier dies
    first, second = (dispatcher(pool, slack, finding_group_s=0, stale_sending_s=1.5) for _ in range(2))
    for n in range(5):
        await store.schedule(pool, engagement_id=uuid4(), planned=stage_changed(n))

    async def second_replica() -> int:
        # Three posts in (1.8 s), the batch's claim is older than stale_sending_s: only a renewed one looks alive.
        await until(lambda: len(slack.messages) >= 3, "the first replica's third post")
        return await second.run_once()

    claimed_by_first, claimed_by_second = await asyncio.gather(first.run_once(), second_replica())
    assert (claimed_by_first, claimed_by_second) == (5, 0)
    texts = [m["text"] for m in slack.messages]
    assert len(texts) == 5
    assert len(set(texts)) == 5
    log = await pool.fetch("SELECT outcome FROM deliveries ORDER BY id")
    assert sorted(d["outcome"] for d in log) == ["sending"] * 5 + ["sent"] * 5  # no "resending_after_crash"


async def test_an_unconfirmed_finding_fails_alone_and_the_rest_of_its_group_is_sent_again(
    pool: asyncpg.Pool, slack: LocalSlack
) -> None:
    slack.delay_s = 2.0  # Slack takes each post but answers after the notifier stopped waiting (1 s)
    notifier = dispatcher(pool, slack, slack_timeout_s=1)
    eid = uuid4()
    await store.schedule(pool, engagement_id=eid, planned=finding(eid, "first"))
    await notifier.run_once()  # "first" alone, unconfirmed: it may be posted once more
    for summary in ("second", "third"):
        await store.schedule(pool, engagement_id=eid, planned=finding(eid, summary))
    await make_due(pool)
    await notifier.run_once()  # all three in one message, unconfirmed again
    status = "SELECT payload->>'summary' AS summary, status FROM reminders ORDER BY payload->>'summary'"
    assert [tuple(r) for r in await pool.fetch(status)] == [
        ("first", "failed"), ("second", "pending"), ("third", "pending")
    ]  # fmt: skip
    slack.delay_s = 0.0
    await make_due(pool)
    await notifier.run_once()
    assert [tuple(r) for r in await pool.fetch(status)] == [
        ("first", "failed"), ("second", "sent"), ("third", "sent")
    ]  # fmt: skip
    messages = await until(lambda: len(slack.messages) == 3 and slack.messages, "the delayed posts to land")
    shown = sorted(
        " ".join(sorted(s for s in ("first", "second", "third") if f"`{s}`" in str(m["blocks"]))) for m in messages
    )
    assert shown == ["first", "first second third", "second third"]  # "first" twice at most, the others once more


async def test_rate_limits_never_use_up_the_attempts_a_server_error_gets(pool: asyncpg.Pool, slack: LocalSlack) -> None:
    slack.fail_next(3, 429, retry_after=1)
    slack.fail_next(3, 500)  # one failed attempt: slack_sdk retries a 500 twice itself
    notifier = dispatcher(pool, slack, finding_group_s=0, max_attempts=2)
    await store.schedule(pool, engagement_id=uuid4(), planned=stage_changed(1))
    deadline = time.monotonic() + 30
    # Passes come faster than Retry-After: most find the channel still limited and put the reminder back unposted.
    while (status := await pool.fetchval("SELECT status FROM reminders")) not in ("sent", "failed"):
        assert time.monotonic() < deadline, "timed out waiting for the reminder to be sent or given up"
        await make_due(pool)
        await notifier.run_once()
        await asyncio.sleep(0.05)
    assert status == "sent"
    assert slack.requests == 7  # 3 x 429, one attempt of 3 x 500, then the post
    assert len(slack.messages) == 1
    log = [(d["outcome"], d["error"]) for d in await pool.fetch("SELECT outcome, error FROM deliveries ORDER BY id")]
    assert log.count(("retry", "rate_limited")) > 2  # each a claim, none counted toward max_attempts
    assert log.count(("retry", "server_error_500")) == 1
    assert log[-1] == ("sent", None)


async def tell(pool: asyncpg.Pool, engagement_id: UUID, type: str, **data: object) -> None:
    """Hand the notifier's subscriber an engagement event that occurred now."""
    event = EngagementEvent(event_id=uuid4(), type=type, engagement_id=engagement_id, occurred_at=datetime.now(UTC),
                            data=data)  # fmt: skip
    await on_engagement_event(event, pool, NotifierSettings(), asyncio.Event())


async def engagement_with_a_call(pool: asyncpg.Pool, name: str, *calls: tuple[str, timedelta]) -> UUID:
    """An engagement with touchpoints (title, how far from now) whose "coming up" (24 h ahead) is due at once."""
    eid = uuid4()
    await tell(pool, eid, "engagement.created", name=name, customer="ACME", slack_channel=f"#{name}")
    for title, away in calls:
        await tell(pool, eid, "touchpoint.scheduled", touchpoint_id=title, title=title,
                   scheduled_at=(datetime.now(UTC) + away).isoformat(), reminder_lead_hours=24)  # fmt: skip
    return eid


async def test_a_dead_notifiers_claim_is_not_posted_once_its_call_is_cancelled_or_its_engagement_closed(
    pool: asyncpg.Pool, slack: LocalSlack
) -> None:
    cancelled, closed, paused = [await engagement_with_a_call(pool, name, (name, timedelta(hours=2)))
                                 for name in ("cancelled", "closed", "paused")]  # fmt: skip
    dead = await store.claim_due(pool, now=datetime.now(UTC), stale_after_s=120)  # and the notifier dies
    assert sorted(r["payload"]["title"] for r in dead) == ["cancelled", "closed", "paused"]
    await tell(pool, cancelled, "touchpoint.cancelled", touchpoint_id="cancelled")
    await tell(pool, closed, "engagement.updated", status="closed")
    await tell(pool, paused, "engagement.updated", status="paused")
    await pool.execute("UPDATE reminders SET claimed_at = now() - interval '1 minute' WHERE status = 'sending'")
    other = dispatcher(pool, slack, finding_group_s=0, stale_sending_s=30)
    await other.run_once()
    assert slack.messages == []  # no call cancelled or engagement closed announced; the paused one waits
    due = "SELECT engagement_id, status FROM reminders WHERE kind = 'touchpoint_due'"
    assert {r["engagement_id"]: r["status"] for r in await pool.fetch(due)} == {
        cancelled: "cancelled", closed: "cancelled", paused: "sending"
    }  # fmt: skip
    tried = ("SELECT outcome FROM deliveries d JOIN reminders r ON r.id = d.reminder_id WHERE r.engagement_id = $1"
             " ORDER BY d.id")  # fmt: skip
    for ended in (cancelled, closed):
        assert [d["outcome"] for d in await pool.fetch(tried, ended)] == ["sending", "cancelled"]

    await tell(pool, paused, "engagement.updated", status="active")
    await other.run_once()
    (message,) = slack.messages
    assert message["text"] == "ACME (paused): Touchpoint coming up: paused"
    assert [d["outcome"] for d in await pool.fetch(tried, paused)] == ["sending", "resending_after_crash", "sent"]


async def test_a_call_cancelled_mid_batch_is_not_posted_and_the_post_in_flight_is_recorded_as_sent(
    pool: asyncpg.Pool, slack: LocalSlack
) -> None:
    slack.delay_s = 1.0
    eid = await engagement_with_a_call(pool, "midway", ("first", timedelta(hours=1)), ("second", timedelta(hours=2)))
    notifier = dispatcher(pool, slack, finding_group_s=0)

    async def cancel_both() -> None:
        await until(lambda: slack.requests >= 1, "the first post to be under way")
        for call in ("first", "second"):
            await tell(pool, eid, "touchpoint.cancelled", touchpoint_id=call)

    claimed, _ = await asyncio.gather(notifier.run_once(), cancel_both())
    assert claimed == 2
    (message,) = await until(lambda: slack.messages, "the first post to land")
    assert message["text"] == "ACME (midway): Touchpoint coming up: first"
    due = "SELECT payload->>'title' AS title, status FROM reminders WHERE kind = 'touchpoint_due' ORDER BY 1"
    assert [tuple(r) for r in await pool.fetch(due)] == [("first", "sent"), ("second", "cancelled")]
    assert slack.requests == 1


async def test_a_call_at_the_digest_hour_or_within_the_hour_after_is_reminded_on_its_own(pool: asyncpg.Pool) -> None:
    day = (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    now = day.replace(hour=7)  # the digest goes out at 09:00
    for at in (day.replace(hour=9), day.replace(hour=9, minute=59), day.replace(hour=10)):
        title = at.strftime("%H:%M")
        planned = Planned(f"touchpoint_due:{title}", "touchpoint_due", title, now, {"title": title,
                          "scheduled_at": at.isoformat()})  # fmt: skip
        await store.schedule(pool, engagement_id=uuid4(), planned=planned)
    alone = await store.claim_due(pool, now=now, stale_after_s=120, held_back=DIGEST_KINDS,
                                  urgent_before=urgent_before(now, 9))  # fmt: skip
    # A digest read as the call starts, or minutes before, is no reminder; an hour ahead it still is.
    assert sorted(r["payload"]["title"] for r in alone) == ["09:00", "09:59"]
