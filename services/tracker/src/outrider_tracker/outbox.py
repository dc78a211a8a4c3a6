"""The transactional outbox: record events with the change, publish them to Kafka afterwards (at least once)."""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Gauge

from outrider_common.events import EngagementEvent
from outrider_common.topics import ENGAGEMENT_EVENTS, Topic

log = logging.getLogger(__name__)
PUBLISHED = Counter("outrider_tracker_outbox_published_total", "Outbox events published to Kafka.", [])
FAILED_PASSES = Counter("outrider_tracker_outbox_relay_failures_total", "Relay passes that failed (retried).", [])
PENDING = Gauge("outrider_tracker_outbox_pending", "Outbox events not yet published (at the last relay pass).")


async def record(
    conn: asyncpg.Connection, *, engagement_id: UUID, type: str, data: dict[str, object] | None = None
) -> EngagementEvent:
    """Add an engagement event to the outbox; call inside the transaction that makes the change."""
    event = EngagementEvent(
        event_id=uuid4(), type=type, engagement_id=engagement_id, occurred_at=datetime.now(UTC), data=data or {}
    )
    await conn.execute(
        "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3::jsonb)",
        ENGAGEMENT_EVENTS.name,
        str(engagement_id),
        event.model_dump_json(),
    )
    return event


async def publish_pending(
    pool: asyncpg.Pool, broker: KafkaBroker, topic_name: Callable[[Topic], str], *, batch: int = 100
) -> int:
    """Publish up to `batch` unpublished events in order; returns how many.

    Rows stay locked (SKIP LOCKED lets other replicas take the next ones) until Kafka acknowledged them;
    a crash in between publishes them again, so consumers dedupe by `event_id`.
    """
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id, key, payload FROM outbox WHERE published_at IS NULL"
            " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            batch,
        )
        for row in rows:
            await broker.publish(
                row["payload"].encode(),
                topic_name(ENGAGEMENT_EVENTS),
                key=row["key"].encode(),
                headers={"content-type": "application/json"},
            )
        if rows:
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = any($1::bigint[])", [r["id"] for r in rows]
            )
    PUBLISHED.inc(len(rows))
    return len(rows)


async def relay(
    pool: asyncpg.Pool, broker: KafkaBroker, topic_name: Callable[[Topic], str], wake: asyncio.Event
) -> None:
    """Publish outbox rows until cancelled; woken at once by `wake`, otherwise polls every second."""
    while True:
        try:
            while await publish_pending(pool, broker, topic_name):
                pass
            PENDING.set(await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
        except Exception as exc:  # Kafka or PostgreSQL away: the rows stay pending and the next pass retries
            FAILED_PASSES.inc()
            log.warning("outbox relay pass failed error=%r", exc)
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=1.0)
