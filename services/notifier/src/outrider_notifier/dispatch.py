"""The delivery loop: claim due reminders (safe across replicas), post them to Slack, record the outcome."""

import asyncio
import contextlib
import json
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from opentelemetry import propagate, trace

from outrider_notifier import messaging, metrics, store
from outrider_notifier.reminders import in_quiet_hours
from outrider_notifier.settings import NotifierSettings
from outrider_notifier.slack import GiveUp, MaybePosted, RetryLater, Sender

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
        digest_hour, group_s = self._settings.digest_hour_utc, self._settings.finding_group_s
        held = (*(DIGEST_KINDS if digest_hour is not None else ()), *(("finding",) if group_s > 0 else ()))
        due = await store.claim_due(
            self._pool, now=now, stale_after_s=self._settings.stale_sending_s, limit=5, held_back=held
        )
        for reminder in due:
            await self._post([reminder], reminder["kind"], reminder["engagement_id"])
        attempted = len(due)
        if group_s > 0:
            groups = await store.claim_findings(
                self._pool, now=now, stale_after_s=self._settings.stale_sending_s, group_s=group_s
            )
            for engagement_id, findings in groups.items():
                await self._post(findings, "finding", engagement_id)
                attempted += len(findings)
        if digest_hour is not None and now.hour >= digest_hour:
            await self._send_digests(now)
        return attempted

    async def _send_digests(self, now: datetime) -> None:
        claimed = await store.claim_digests(
            self._pool, now=now, kinds=DIGEST_KINDS, default_channel=self._settings.default_channel
        )
        for channel, items in claimed.items():
            text, blocks = messaging.build_digest(items, tracker_url=self._settings.tracker_url)
            attempts = [(item["id"], item["attempts"] + 1) for item in items]
            try:
                posted = await self._sender.post(channel=channel, text=text, blocks=blocks)
            except MaybePosted as exc:
                if await self._maybe_posted(items, attempts, exc, attempt=1):
                    await store.release_digest(self._pool, day=now.date(), channel=channel)
                continue
            except (RetryLater, GiveUp) as exc:
                metrics.SLACK_ERRORS.labels(exc.kind).inc()
                await store.release_digest(self._pool, day=now.date(), channel=channel)
                await store.mark_retry(self._pool, attempts=attempts, error=exc.kind,
                                       at=now + timedelta(seconds=backoff(1, None)), give_up=False)  # fmt: skip
                continue
            await store.mark_sent(self._pool, attempts=attempts, channel=posted.channel, ts=posted.ts)
            metrics.REMINDERS.labels("sent").inc(len(items))

    async def _post(self, reminders: list[dict[str, Any]], kind: str, engagement_id: UUID) -> None:
        """One Slack message about `reminders` (claimed, all of `kind` and of one engagement): one reminder, or a
        group of findings. The first reminder's trace continues in the post, the others' are linked."""
        others = [trace.get_current_span(propagate.extract(r["trace_context"])) for r in reminders[1:]]
        links = [trace.Link(span.get_span_context()) for span in others if span.get_span_context().is_valid]
        attempt = max(r["attempts"] for r in reminders)
        with tracer.start_as_current_span(
            "notifier post to Slack", context=propagate.extract(reminders[0]["trace_context"]), links=links,
            attributes={"outrider.reminder_kind": kind, "outrider.attempt": attempt,
                        "outrider.reminders": len(reminders)},
        ):  # fmt: skip
            await self._deliver(reminders, kind, engagement_id, attempt)

    async def _deliver(self, reminders: list[dict[str, Any]], kind: str, engagement_id: UUID, attempt: int) -> None:
        info = await store.engagement_info(self._pool, engagement_id)
        name, customer, channel = (
            (info["name"], info["customer"], info["slack_channel"])
            if info
            else (str(engagement_id), "(unknown customer)", None)
        )
        owners = json.loads(info["owners"]) if info else {}
        status_url = f"{self._settings.tracker_url}/v1/engagements/{engagement_id}/status"
        if len(reminders) == 1:
            text, blocks = messaging.build(
                kind, reminders[0]["payload"], name=name, customer=customer, status_url=status_url, owners=owners
            )
        else:
            text, blocks = messaging.build_findings(
                [r["payload"] for r in reminders], name=name, customer=customer, status_url=status_url,
                findings_url=f"{self._settings.tracker_url}/v1/engagements/{engagement_id}/findings", owners=owners,
            )  # fmt: skip
        attempts = [(r["id"], r["attempts"]) for r in reminders]
        try:
            posted = await self._sender.post(
                channel=channel or self._settings.default_channel, text=text, blocks=blocks
            )
        except MaybePosted as exc:
            await self._maybe_posted(reminders, attempts, exc, attempt=attempt)
            return
        except (RetryLater, GiveUp) as exc:
            metrics.SLACK_ERRORS.labels(exc.kind).inc()
            give_up = isinstance(exc, GiveUp) or attempt >= self._settings.max_attempts
            delay = backoff(attempt, exc.after_s if isinstance(exc, RetryLater) else None)
            await store.mark_retry(
                self._pool,
                attempts=attempts,
                error=exc.kind,
                at=datetime.now(UTC) + timedelta(seconds=delay),
                give_up=give_up,
            )
            if give_up:
                metrics.REMINDERS.labels("failed").inc(len(reminders))
                log.error(
                    "reminder failed ids=%s kind=%s error=%s attempts=%s",
                    ",".join(str(r["id"]) for r in reminders),
                    kind,
                    exc.kind,
                    attempt,
                )
            return
        await store.mark_sent(self._pool, attempts=attempts, channel=posted.channel, ts=posted.ts)
        metrics.REMINDERS.labels("sent").inc(len(reminders))
        for reminder in reminders:
            metrics.LATENCY.observe(max((datetime.now(UTC) - reminder["due_at"]).total_seconds(), 0.0))

    async def _maybe_posted(
        self, reminders: list[dict[str, Any]], attempts: list[tuple[UUID, int]], exc: MaybePosted, *, attempt: int
    ) -> bool:
        """Slack may have posted it: send it again once (the one documented duplicate), never twice; True when it
        will be sent again."""
        metrics.SLACK_ERRORS.labels(exc.kind).inc()
        at = datetime.now(UTC) + timedelta(seconds=backoff(attempt, None))
        resend = await store.mark_maybe_posted(self._pool, attempts=attempts, error=exc.kind, at=at)
        if not resend:
            metrics.REMINDERS.labels("failed").inc(len(reminders))
            log.error("reminder maybe posted twice, not sent again ids=%s error=%s",
                      ",".join(str(r["id"]) for r in reminders), exc.kind)  # fmt: skip
        return resend

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
