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
from outrider_notifier.reminders import in_quiet_hours, too_late
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


def counted_attempt(reminders: list[dict[str, Any]]) -> int:
    """The attempt one post of `reminders` makes toward `max_attempts`: the most any of them has made, claims that
    waited out a 429 not counted."""
    return max(int(r["attempts"]) - int(r["rate_limited"]) for r in reminders)


def next_digest(now: datetime, hour: int) -> datetime:
    """When the next daily digest goes out: today at `hour` (UTC) if that is still to come, else tomorrow."""
    today = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return today if now < today else today + timedelta(days=1)


# A digest read as a call starts, or minutes before, is no reminder of it: the call must be this much after the digest.
DIGEST_NOTICE = timedelta(hours=1)


def urgent_before(now: datetime, hour: int) -> datetime:
    """A touchpoint starting before this cannot wait for the next digest (at `hour`): its reminder goes out on its
    own. One starting at the digest hour, or within `DIGEST_NOTICE` after it, included."""
    return next_digest(now, hour) + DIGEST_NOTICE


class Dispatcher:
    """Posts due reminders; any number of notifier replicas may run one."""

    def __init__(self, pool: asyncpg.Pool, sender: Sender, settings: NotifierSettings) -> None:
        self._pool, self._sender, self._settings = pool, sender, settings
        self.wake = asyncio.Event()
        # Channels Slack asked us to leave alone until then (429 Retry-After): their posts wait, the others go on.
        self._limited: dict[str, datetime] = {}
        # What this pass claimed and has not posted yet, (reminder id -> attempt): renewed before every post, so a
        # claim stays fresh while we work through a batch and only a dead notifier's goes stale.
        self._claims: dict[UUID, int] = {}
        self._stopping = False

    def stop(self) -> None:
        """Take no new claims and post nothing more once the post in hand is done; `run` then ends."""
        self._stopping = True
        self.wake.set()

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many reminders were attempted."""
        now = datetime.now(UTC)
        if self._stopping or in_quiet_hours(now, self._settings.quiet_hours_utc):
            return 0
        self._claims.clear()  # a pass cut short (a crash) leaves its claims to go stale, to be taken up again
        digest_hour, group_s = self._settings.digest_hour_utc, self._settings.finding_group_s
        urgent = None
        if digest_hour is not None:
            if now.hour >= digest_hour:
                await self._send_digests(now)
            urgent = urgent_before(now, digest_hour)
        held = (*(DIGEST_KINDS if digest_hour is not None else ()), *(("finding",) if group_s > 0 else ()))
        if self._stopping:  # stopped while the digests went out: claim nothing more
            return 0
        due = await store.claim_due(
            self._pool, now=now, stale_after_s=self._settings.stale_sending_s, limit=5, held_back=held,
            urgent_before=urgent,
        )  # fmt: skip
        self._hold(due)
        for reminder in await self._sendable(due, now):
            await self._post([reminder], reminder["kind"], reminder["engagement_id"])
        attempted = len(due)
        if group_s > 0 and not self._stopping:
            groups = await store.claim_findings(
                self._pool, now=now, stale_after_s=self._settings.stale_sending_s, group_s=group_s
            )
            for claimed in groups.values():
                self._hold(claimed)
            for engagement_id, claimed in groups.items():
                attempted += len(claimed)
                if findings := await self._sendable(claimed, now):
                    await self._post(findings, "finding", engagement_id)
        return attempted

    def _hold(self, claimed: list[dict[str, Any]]) -> None:
        self._claims.update((r["id"], r["attempts"]) for r in claimed)

    async def _still_ours(self, reminders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Renew every claim of this pass not posted yet and return those of `reminders` still ours, now no longer
        held (they are being posted). One taken over by another notifier (our claim had gone stale: a post took
        longer than `stale_sending_s`) is that one's to post; one withdrawn (its touchpoint cancelled, its engagement
        closed) is not posted at all."""
        ours, withdrawn = await store.renew(self._pool, attempts=list(self._claims.items()))
        lost = [r for r in self._claims if r not in ours and r not in withdrawn]  # each told once, when found
        self._claims = {r: a for r, a in self._claims.items() if r in ours}
        for r in reminders:
            self._claims.pop(r["id"], None)
        if withdrawn:
            log.info("claim withdrawn before its post, not posted ids=%s", ",".join(map(str, withdrawn)))
        if lost:
            log.warning("claim taken over by another notifier, not posted here ids=%s", ",".join(map(str, lost)))
        return [r for r in reminders if r["id"] in ours]

    async def _sendable(self, claimed: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
        """The claimed reminders worth posting. A "coming up" whose touchpoint is already overdue ends (expired); one
        no message can be made of (a bug, a payload from another version) ends failed and logged, instead of failing
        its digest or the dispatcher on every pass."""
        grace = timedelta(seconds=self._settings.overdue_grace_s)
        late, unusable = {}, set()
        for r in claimed:
            try:
                messaging.describe(r["kind"], r["payload"])
            except Exception as exc:  # whatever it is, it fails the same way on every attempt
                unusable.add(r["id"])
                error = f"unusable: {type(exc).__name__}: {exc}"[:200]
                await store.mark_retry(self._pool, attempts=[(r["id"], r["attempts"])], error=error, at=now,
                                       give_up=True)  # fmt: skip
                metrics.REMINDERS.labels("failed").inc()
                log.exception("reminder failed id=%s kind=%s error=%s", r["id"], r["kind"], error)
                continue
            if too_late(r["kind"], r["payload"], now=now, grace=grace):
                late[r["id"]] = r["attempts"]
        if late:
            await store.mark_expired(self._pool, attempts=list(late.items()))
            metrics.REMINDERS.labels("expired").inc(len(late))
        return [r for r in claimed if r["id"] not in late and r["id"] not in unusable]

    async def _send_digests(self, now: datetime) -> None:
        claimed = await store.claim_digests(
            self._pool, now=now, kinds=DIGEST_KINDS, default_channel=self._settings.default_channel
        )
        for claimed_items in claimed.values():
            self._hold(claimed_items)
        for channel, claimed_items in claimed.items():
            items = await self._sendable(claimed_items, now)
            if items and (items := await self._still_ours(items)):
                text, blocks = messaging.build_digest(items, link_template=self._settings.engagement_url)
                if await self._send(channel, text, blocks, items, "digest", counted_attempt(items)):
                    continue
            # Not posted (or nothing left to post): the channel's digest may go out later today.
            await store.release_digest(self._pool, day=now.date(), channel=channel)

    async def _post(self, reminders: list[dict[str, Any]], kind: str, engagement_id: UUID) -> None:
        """One Slack message about `reminders` (claimed, all of `kind` and of one engagement): one reminder, or a
        group of findings. The first reminder's trace continues in the post, the others' are linked."""
        if not (reminders := await self._still_ours(reminders)):
            return
        others = [trace.get_current_span(propagate.extract(r["trace_context"])) for r in reminders[1:]]
        links = [trace.Link(span.get_span_context()) for span in others if span.get_span_context().is_valid]
        attempt = counted_attempt(reminders)
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
        link = messaging.engagement_link(self._settings.engagement_url, engagement_id)
        if len(reminders) == 1:
            text, blocks = messaging.build(kind, reminders[0]["payload"], name=name, customer=customer,
                                           engagement_id=engagement_id, link=link, owners=owners)  # fmt: skip
        else:
            text, blocks = messaging.build_findings([r["payload"] for r in reminders], name=name, customer=customer,
                                                    engagement_id=engagement_id, link=link, owners=owners)  # fmt: skip
        if await self._send(channel or self._settings.default_channel, text, blocks, reminders, kind, attempt):
            for reminder in reminders:
                metrics.LATENCY.observe(max((datetime.now(UTC) - reminder["due_at"]).total_seconds(), 0.0))

    async def _send(
        self, channel: str, text: str, blocks: list[dict[str, Any]], reminders: list[dict[str, Any]], kind: str,
        attempt: int,
    ) -> bool:  # fmt: skip
        """Post one message carrying `reminders` (claimed, this counted `attempt`) and record the outcome; True when
        posted.

        A failure puts them back for a later attempt (Slack's Retry-After, else backoff) or, past `max_attempts` or
        refused for good, marks them failed. Being rate-limited is not a failure: it never uses up the attempts.
        """
        attempts = [(r["id"], r["attempts"]) for r in reminders]
        if self._stopping:  # handed back unposted, for another notifier (or this one's successor) to post at once
            await store.release(self._pool, attempts=attempts)
            return False
        ids = ",".join(str(r["id"]) for r in reminders)
        now = datetime.now(UTC)
        if (until := self._limited.get(channel)) and until > now:
            await store.mark_retry(self._pool, attempts=attempts, error="rate_limited", at=until, give_up=False,
                                   rate_limited=True)  # fmt: skip
            return False
        try:
            posted = await self._sender.post(channel=channel, text=text, blocks=blocks)
        except MaybePosted as exc:
            await self._maybe_posted(reminders, attempts, exc, attempt=attempt)
            return False
        except (RetryLater, GiveUp) as exc:
            metrics.SLACK_ERRORS.labels(exc.kind).inc()
            limited = isinstance(exc, RetryLater) and exc.kind == "rate_limited"
            give_up = isinstance(exc, GiveUp) or (attempt >= self._settings.max_attempts and not limited)
            at = datetime.now(UTC) + timedelta(seconds=backoff(attempt, getattr(exc, "after_s", None)))
            if limited:
                self._limited[channel] = at
            await store.mark_retry(self._pool, attempts=attempts, error=exc.kind, at=at, give_up=give_up,
                                   rate_limited=limited)  # fmt: skip
            if give_up:
                metrics.REMINDERS.labels("failed").inc(len(reminders))
                log.error("reminder failed ids=%s kind=%s error=%s attempts=%s", ids, kind, exc.kind, attempt)
            else:
                log.warning("slack post to retry ids=%s kind=%s channel=%s error=%s attempt=%s at=%s",
                            ids, kind, channel, exc.kind, attempt, at.isoformat(timespec="seconds"))  # fmt: skip
            return False
        self._limited.pop(channel, None)
        await store.mark_sent(self._pool, attempts=attempts, channel=posted.channel, ts=posted.ts)
        metrics.REMINDERS.labels("sent").inc(len(reminders))
        return True

    async def _maybe_posted(
        self, reminders: list[dict[str, Any]], attempts: list[tuple[UUID, int]], exc: MaybePosted, *, attempt: int
    ) -> None:
        """Slack may have posted it: send each reminder again once (the one documented duplicate), never twice."""
        metrics.SLACK_ERRORS.labels(exc.kind).inc()
        at = datetime.now(UTC) + timedelta(seconds=backoff(attempt, None))
        again = await store.mark_maybe_posted(self._pool, attempts=attempts, error=exc.kind, at=at)
        if again:
            log.warning("slack post may have been taken, sending once more ids=%s error=%s",
                        ",".join(map(str, again)), exc.kind)  # fmt: skip
        if failed := [r["id"] for r in reminders if r["id"] not in again]:
            metrics.REMINDERS.labels("failed").inc(len(failed))
            log.error("reminder maybe posted twice, not sent again ids=%s error=%s", ",".join(map(str, failed)),
                      exc.kind)  # fmt: skip

    async def run(self) -> None:
        """Deliver until stopped: at once when woken, else every `dispatch_interval_s`."""
        while True:
            try:
                while await self.run_once():
                    pass
            except (OSError, asyncpg.PostgresError) as exc:  # the database is away: the next pass retries
                log.warning("dispatch pass failed error=%r", exc)
            except Exception:  # a bug must not end delivery for good: logged, and the next pass goes on
                log.exception("dispatch pass failed")
            self.wake.clear()
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._settings.dispatch_interval_s)
