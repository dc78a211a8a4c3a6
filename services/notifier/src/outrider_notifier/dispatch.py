"""The delivery loop: claim due reminders (safe across replicas), post them to Slack, record the outcome."""

import asyncio
import contextlib
import json
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from opentelemetry import propagate, trace

from outrider_notifier import messaging, metrics, store
from outrider_notifier.reminders import in_quiet_hours
from outrider_notifier.settings import NotifierSettings
from outrider_notifier.slack import GiveUp, RetryLater, Sender

log = logging.getLogger(__name__)
# Routine reminders that a daily digest gathers when one is configured; the rest stay immediate.
DIGEST_KINDS = ("touchpoint_due", "stage_stalled", "handoff_pending", "tech_review_due")
tracer = trace.get_tracer(__name__)


def backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds until the next attempt: Slack's Retry-After when given, else exponential with jitter (max 5 min)."""
    if retry_after is not None:
        return retry_after
    return min(2.0**attempt, 300.0) * random.uniform(0.5, 1.0)


class Dispatcher:
    """Posts due reminders; any number of notifier replicas may run one."""

    def __init__(self, pool: asyncpg.Pool, sender: Sender, settings: NotifierSettings) -> None:
        self._pool, self._sender, self._settings = pool, sender, settings
        self.wake = asyncio.Event()

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many reminders were attempted."""
        now = datetime.now(UTC)
        if in_quiet_hours(now, self._settings.quiet_hours_utc):
            return 0
        digest_hour = self._settings.digest_hour_utc
        held = DIGEST_KINDS if digest_hour is not None else ()
        due = await store.claim_due(
            self._pool, now=now, stale_after_s=self._settings.stale_sending_s, limit=5, held_for_digest=held
        )
        for reminder in due:
            with tracer.start_as_current_span(
                "notifier post to Slack", context=propagate.extract(reminder["trace_context"]),
                attributes={"outrider.reminder_kind": reminder["kind"], "outrider.attempt": reminder["attempts"]},
            ):  # fmt: skip
                await self._deliver(reminder)
        if digest_hour is not None and now.hour >= digest_hour:
            await self._send_digests(now)
        return len(due)

    async def _send_digests(self, now: datetime) -> None:
        claimed = await store.claim_digests(
            self._pool, now=now, kinds=DIGEST_KINDS, default_channel=self._settings.default_channel
        )
        for channel, items in claimed.items():
            text, blocks = messaging.build_digest(items, tracker_url=self._settings.tracker_url)
            try:
                posted = await self._sender.post(channel=channel, text=text, blocks=blocks)
            except (RetryLater, GiveUp) as exc:
                metrics.SLACK_ERRORS.labels(exc.kind).inc()
                await store.release_digest(self._pool, day=now.date(), channel=channel)
                for item in items:
                    await store.mark_retry(self._pool, reminder_id=item["id"], attempt=item["attempts"] + 1,
                                           error=exc.kind, at=now + timedelta(seconds=backoff(1, None)),
                                           give_up=False)  # fmt: skip
                continue
            for item in items:
                await store.mark_sent(self._pool, reminder_id=item["id"], attempt=item["attempts"] + 1,
                                      channel=posted.channel, ts=posted.ts)  # fmt: skip
                metrics.REMINDERS.labels("sent").inc()

    async def _deliver(self, reminder: dict[str, Any]) -> None:
        info = await store.engagement_info(self._pool, reminder["engagement_id"])
        name, customer, channel = (
            (info["name"], info["customer"], info["slack_channel"])
            if info
            else (str(reminder["engagement_id"]), "(unknown customer)", None)
        )
        owners = json.loads(info["owners"]) if info else {}
        text, blocks = messaging.build(
            reminder["kind"],
            reminder["payload"],
            name=name,
            customer=customer,
            status_url=f"{self._settings.tracker_url}/v1/engagements/{reminder['engagement_id']}/status",
            owners=owners,
        )
        attempt = reminder["attempts"]
        try:
            posted = await self._sender.post(
                channel=channel or self._settings.default_channel, text=text, blocks=blocks
            )
        except (RetryLater, GiveUp) as exc:
            metrics.SLACK_ERRORS.labels(exc.kind).inc()
            give_up = isinstance(exc, GiveUp) or attempt >= self._settings.max_attempts
            delay = backoff(attempt, exc.after_s if isinstance(exc, RetryLater) else None)
            await store.mark_retry(
                self._pool,
                reminder_id=reminder["id"],
                attempt=attempt,
                error=exc.kind,
                at=datetime.now(UTC) + timedelta(seconds=delay),
                give_up=give_up,
            )
            if give_up:
                metrics.REMINDERS.labels("failed").inc()
                log.error(
                    "reminder failed id=%s kind=%s error=%s attempts=%s",
                    reminder["id"],
                    reminder["kind"],
                    exc.kind,
                    attempt,
                )
            return
        await store.mark_sent(
            self._pool, reminder_id=reminder["id"], attempt=attempt, channel=posted.channel, ts=posted.ts
        )
        metrics.REMINDERS.labels("sent").inc()
        metrics.LATENCY.observe(max((datetime.now(UTC) - reminder["due_at"]).total_seconds(), 0.0))

    async def run(self) -> None:
        """Deliver until cancelled: at once when woken, else every `dispatch_interval_s`."""
        while True:
            try:
                while await self.run_once():
                    pass
            except (OSError, asyncpg.PostgresError) as exc:  # the database is away: the next pass retries
                log.warning("dispatch pass failed error=%r", exc)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._settings.dispatch_interval_s)
