"""Subscribers of the notifier: events become stored reminders (idempotently), never messages directly."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Annotated, Any

import asyncpg
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from faststream import BaseMiddleware, Context, ContextRepo
from faststream.exceptions import HandlerException
from faststream.kafka import KafkaBroker

from outrider_common.db import DATABASE_AWAY
from outrider_common.events import EngagementEvent, Finding
from outrider_common.topics import Topic, dead_letter_headers
from outrider_notifier import metrics, store
from outrider_notifier.reminders import plan_for_event, plan_for_finding, subject_of, subjects_cancelled_by
from outrider_notifier.settings import NotifierSettings
from outrider_notifier.slack import RetryLater

log = logging.getLogger(__name__)


async def on_engagement_event(
    event: EngagementEvent,
    pool: Annotated[asyncpg.Pool, Context("pool")],
    settings: Annotated[NotifierSettings, Context("settings")],
    wake: Annotated[asyncio.Event, Context("wake_dispatcher")],
) -> None:
    """Schedule or cancel reminders for an engagement event (a redelivered event changes nothing, nor does one older
    than an event already applied to its subject)."""
    metrics.EVENTS.labels(event.type).inc()
    async with pool.acquire() as conn, conn.transaction():
        if event.type == "engagement.created":
            await store.remember_engagement(
                conn,
                engagement_id=event.engagement_id,
                name=str(event.data.get("name", "")),
                customer=str(event.data.get("customer", "")),
                channel=_text(event.data.get("slack_channel")),
                owners={str(k): str(v) for k, v in dict(event.data.get("owners") or {}).items()},  # type: ignore[call-overload]
            )
        if event.type in ("engagement.created", "engagement.updated"):
            # Field by field, only where this event is the newest word: a replayed older one (a rename, `paused`)
            # must not undo what came after it.
            fresh = {}
            for field in store.ENGAGEMENT_FIELDS.keys() & event.data.keys():
                older = await store.mark_newest(conn, engagement_id=event.engagement_id, subject=f"engagement:{field}",
                                                occurred_at=event.occurred_at, event_id=event.event_id)  # fmt: skip
                if older is None:
                    fresh[field] = event.data[field]
            await store.update_engagement(conn, engagement_id=event.engagement_id, changes=fresh)
        # Recorded even while the engagement is closed: an older event read once it is reopened is still stale.
        about = subject_of(event)
        newer = None if about is None else await store.mark_newest(
            conn, engagement_id=event.engagement_id, subject=about, occurred_at=event.occurred_at,
            event_id=event.event_id)  # fmt: skip
        if await store.engagement_status(conn, event.engagement_id) == "closed":
            # A closed engagement is told nothing more: what was pending ends, what its events would plan is not.
            ended = await store.cancel_engagement(conn, engagement_id=event.engagement_id)
            metrics.REMINDERS.labels("cancelled").inc(ended)
            return
        lead = None if settings.touchpoint_lead_s is None else timedelta(seconds=settings.touchpoint_lead_s)
        grace = timedelta(seconds=settings.overdue_grace_s)
        if newer is not None:
            # Read after a newer event of its subject (a dead letter replayed): what it says is no longer true.
            log.info("stale event changes nothing event_id=%s type=%s engagement_id=%s subject=%s occurred_at=%s"
                     " newest_applied_at=%s", event.event_id, event.type, event.engagement_id, about,
                     event.occurred_at.isoformat(), newer.isoformat())  # fmt: skip
            metrics.STALE_EVENTS.labels(event.type).inc()
            return
        plan = plan_for_event(event, lead=lead, grace=grace)
        if event.type == "stage.current":  # a stage is entered once: restated, its stalled reminder is the one it had
            plan = [await store.as_stored(conn, engagement_id=event.engagement_id, planned=p) for p in plan]
        replanned = subjects_cancelled_by(event)
        for subject in replanned:
            cancelled = await store.cancel(conn, engagement_id=event.engagement_id, subject=subject,
                                           keep=[p.idempotency_key for p in plan])  # fmt: skip
            metrics.REMINDERS.labels("cancelled").inc(cancelled)
        for planned in plan:
            # A touchpoint renamed keeps its reminders with the new title; moved back, it gets its cancelled ones back.
            replan = planned.subject in replanned
            if await store.schedule(conn, engagement_id=event.engagement_id, planned=planned, replan=replan):
                metrics.REMINDERS.labels("scheduled").inc()
    wake.set()


async def on_finding(
    finding: Finding,
    pool: Annotated[asyncpg.Pool, Context("pool")],
    wake: Annotated[asyncio.Event, Context("wake_dispatcher")],
) -> None:
    """A new finding becomes a reminder due now (the dispatcher groups an engagement's findings)."""
    metrics.EVENTS.labels("finding").inc()
    if await store.engagement_status(pool, finding.engagement_id) == "closed":
        return  # its logs still arrive, but nobody works on it any more
    if await store.schedule(
        pool, engagement_id=finding.engagement_id, planned=plan_for_finding(finding, now=datetime.now(UTC))
    ):
        metrics.REMINDERS.labels("scheduled").inc()
    wake.set()


def _text(value: object) -> str | None:
    return None if value is None else str(value)


# Failures of what the notifier depends on, not of the message: the same message read again later can go through.
TRANSIENT: tuple[type[Exception], ...] = (
    *DATABASE_AWAY,
    KafkaError,
    asyncpg.TransactionRollbackError,  # serialization failure, deadlock
    RetryLater,  # Slack rate-limited or unreachable, as slack.py classifies it (today only the dispatcher posts)
)
RETRY_PAUSE_S = 1.0  # between reads of a message whose handling failed transiently: an outage must not spin the CPU


def is_transient(exc: BaseException) -> bool:
    """Whether handling a message failed because PostgreSQL, Kafka or Slack is away or busy (`TRANSIENT`).

    Such a message is read again until it goes through: never lost. Anything else fails the same way on every read —
    a message that breaks the contract (pydantic's ValidationError), data the rules cannot use (KeyError, ValueError,
    OverflowError), data PostgreSQL refuses (asyncpg's DataError, IntegrityConstraintViolationError), a bug — so
    retrying it would only hold up every message behind it on its partition: it is dead-lettered instead.
    """
    return isinstance(exc, TRANSIENT)


class DeadLetters:
    """Broker middleware for the subscribers of `topics` (real name -> registry entry, real dead-letter topic name).

    A message whose handling fails for good (not `is_transient`) is published, with the reason, to its topic's
    dead-letter topic, counted and logged, and then acknowledged, so the consumer moves on. A transient failure is
    left to NACK_ON_ERROR after a pause: the message is read again. Wrapping decoding too, it catches a message that
    breaks the contract as well as one a handler fails on.
    """

    def __init__(self, broker: KafkaBroker, topics: dict[str, tuple[Topic, str]]) -> None:
        self.broker, self.topics = broker, topics

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        return _DeadLettering(msg, context=context, letters=self)


class _DeadLettering(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, letters: DeadLetters) -> None:
        super().__init__(msg, context=context)
        self.letters = letters

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        record = self.msg
        if (not isinstance(exc_val, Exception) or isinstance(exc_val, HandlerException)
                or not isinstance(record, ConsumerRecord) or record.topic not in self.letters.topics):  # fmt: skip
            return False
        if is_transient(exc_val):
            await asyncio.sleep(RETRY_PAUSE_S)
            return False
        topic, dead_letter = self.letters.topics[record.topic]
        reason, source = f"{type(exc_val).__name__}: {exc_val}", f"{record.topic}/{record.partition}/{record.offset}"
        headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers}
        # Should this publish fail, its error (Kafka's: transient) takes over and the message is read again.
        await self.letters.broker.publish(
            record.value or b"",
            dead_letter,
            key=record.key,
            headers=dead_letter_headers(headers, reason=reason, source=source),
        )
        metrics.DEAD_LETTERS.labels(topic.name, type(exc_val).__name__).inc()
        log.error("dead-lettered message source=%s reason=%s", source, reason, exc_info=exc_val)
        return True  # handled: the message is acknowledged
