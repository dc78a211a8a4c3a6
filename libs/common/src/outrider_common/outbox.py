"""The transactional outbox: record an event with the change it reports, publish it afterwards (at least once)."""

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge
from pydantic import BaseModel

from outrider_common.kafka import client_options
from outrider_common.settings import KafkaSettings
from outrider_common.topics import ALL_TOPICS, Topic

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
TOPICS = {t.name: t for t in ALL_TOPICS}


# One statement for any number of events, inserted (and so numbered) in the order given.
INSERT = """
INSERT INTO outbox (producer, topic, key, payload, trace_context)
SELECT $1, $2, e.key, e.payload::jsonb, $5::jsonb
FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS e(key, payload, i) ORDER BY e.i
"""


async def add(conn: asyncpg.Connection, *, producer: str, topic: Topic, key: str, event: BaseModel) -> None:
    """Queue `event` for `topic`; call inside the transaction that makes the change."""
    await add_many(conn, producer=producer, topic=topic, events=[(key, event)])


async def add_many(
    conn: asyncpg.Connection, *, producer: str, topic: Topic, events: Sequence[tuple[str, BaseModel]]
) -> None:
    """Queue `(key, event)`s for `topic` in order, in one round trip; call inside the change's transaction."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # the change's trace, continued when the relay publishes
    context = json.dumps(carrier)
    if events:
        keys, payloads = [key for key, _ in events], [event.model_dump_json() for _, event in events]
        await conn.execute(INSERT, producer, topic.name, keys, payloads, context)


# Taken by a relay's pass, released when its transaction ends (also when its connection drops): one pass at a time.
PASS_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended('outrider outbox relay ' || $1, 0))"
BUSY_RETRY_S = 0.1  # another relay is publishing: look again soon, for rows committed after its last look
PRUNE_EVERY_S = 60.0  # published rows past their retention are deleted at most this often, not on every pass
PRUNE_BATCH = 5_000  # rows one DELETE removes at most: short statements, never one holding the table for long
PRUNE_BATCHES = 20  # DELETEs one prune runs at most: a backlog goes over several minutes, publishing in between
DEFAULT_RETENTION = timedelta(days=7)
_RELAY_METRICS: dict[str, tuple[Counter, Counter, Gauge, Counter]] = {}  # per producer, as registered


class Relay:
    """Publishes one producer's outbox rows in order; any number of replicas may run it, one pass at a time.

    Only one relay of a producer publishes at a time (an advisory lock held for its pass): were two passes to send
    at once, one could claim an engagement's next event while the other still waited for Kafka to take the one
    before it, and the later event could land first on their partition.

    It has its own idempotent aiokafka producer rather than the service's FastStream broker: FastStream's publish
    runs its middleware stack once per message (py-spy: ~0.35 ms of the analyzer's event loop per finding, a sixth of
    the loop in the 3 GB bench), while the relay needs only the send, a producer span and the trace context in the
    headers, which it adds itself.
    """

    def __init__(
        self,
        producer: str,
        kafka: KafkaSettings,
        topic_name: Callable[[Topic], str],
        *,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self.producer, self._kafka, self._topic_name = producer, kafka, topic_name
        self.retention, self._next_prune = retention, 0.0
        self.wake = asyncio.Event()
        if producer not in _RELAY_METRICS:  # once a process: a second app (tests, a reload) shares them
            _RELAY_METRICS[producer] = (
                Counter(f"outrider_{producer}_outbox_published_total", "Outbox events published.", []),
                Counter(f"outrider_{producer}_outbox_relay_failures_total", "Relay passes that failed.", []),
                Gauge(f"outrider_{producer}_outbox_pending", "Outbox events not yet published."),
                Counter(f"outrider_{producer}_outbox_deleted_total", "Published outbox events deleted.", []),
            )
        self._published, self._failures, self._pending, self._deleted = _RELAY_METRICS[producer]

    async def publish_pending(self, pool: asyncpg.Pool, kafka: AIOKafkaProducer, *, batch: int = 500) -> int | None:
        """Publish up to `batch` rows with `kafka`; returns how many, or None when another relay's pass is running.

        The producer's lock is held until Kafka acknowledged the rows and they are marked; a crash in between
        publishes them again, so consumers dedupe by event id.
        """
        async with pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(PASS_LOCK, self.producer):
                return None
            rows = await conn.fetch(
                "SELECT id, topic, key, payload, trace_context FROM outbox WHERE producer = $1 AND published_at IS NULL"
                " ORDER BY id LIMIT $2",
                self.producer,
                batch,
            )
            # Queued in order without waiting for each acknowledgement, so the producer sends them in a few
            # requests instead of one round trip each (the idempotent producer keeps each partition's order); the
            # rows are marked only once Kafka acknowledged every one of them.
            acks = []
            # The events of one change share its trace context (a flush's findings, say): one relay span each.
            for context, events in itertools.groupby(rows, key=lambda r: r["trace_context"]):
                with tracer.start_as_current_span("outbox relay", context=propagate.extract(json.loads(context))):
                    for row in events:
                        acks.append(await self._send(kafka, row))
            await asyncio.gather(*acks)
            if rows:
                await conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE id = any($1::bigint[])", [r["id"] for r in rows]
                )
        self._published.inc(len(rows))
        return len(rows)

    async def delete_published(self, pool: asyncpg.Pool, *, batch: int = PRUNE_BATCH) -> int:
        """Delete up to `batch` of this producer's rows published longer than `retention` ago, oldest first; returns
        how many. Rows not yet published are never deleted, whatever their age."""
        result = await pool.execute(
            "DELETE FROM outbox WHERE id = any(ARRAY(SELECT id FROM outbox WHERE producer = $1 AND published_at < now()"
            " - $2::interval ORDER BY published_at LIMIT $3))",
            self.producer,
            self.retention,
            batch,
        )
        deleted = int(result.split()[-1])
        self._deleted.inc(deleted)
        return deleted

    async def _prune(self, pool: asyncpg.Pool) -> None:
        """Delete what is past its retention, in batches, once `PRUNE_EVERY_S` has passed since the last prune."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        for _ in range(PRUNE_BATCHES):
            if await self.delete_published(pool) < PRUNE_BATCH:
                break

    async def _send(self, kafka: AIOKafkaProducer, row: asyncpg.Record) -> asyncio.Future[Any]:
        """Queue one row's event with a producer span, whose context the consumer's span continues."""
        topic = self._topic_name(TOPICS[row["topic"]])
        with tracer.start_as_current_span(
            f"{topic} publish",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": topic},
        ):
            carrier = {"content-type": "application/json", "correlation_id": str(row["id"])}
            propagate.inject(carrier)
            headers = [(k, v.encode()) for k, v in carrier.items()]
            ack: asyncio.Future[Any] = await kafka.send(
                topic, row["payload"].encode(), key=row["key"].encode(), headers=headers
            )
            return ack

    async def _start_producer(self) -> AIOKafkaProducer:
        kafka = AIOKafkaProducer(**client_options(self._kafka), client_id=f"outrider-{self.producer}-outbox",
                                 enable_idempotence=True, acks="all")  # fmt: skip
        try:
            await kafka.start()
        except BaseException:
            await kafka.stop()
            raise
        return kafka

    async def run(self, pool: asyncpg.Pool) -> None:
        """Publish until cancelled; `wake.set()` triggers a pass at once, otherwise one runs every second."""
        kafka: AIOKafkaProducer | None = None
        try:
            while True:
                published: int | None = 0
                try:
                    kafka = kafka or await self._start_producer()  # Kafka may not be up yet: again next pass
                    while published := await self.publish_pending(pool, kafka):
                        pass
                    self._pending.set(
                        await pool.fetchval(
                            "SELECT count(*) FROM outbox WHERE producer = $1 AND published_at IS NULL", self.producer
                        )
                    )
                    await self._prune(pool)
                except Exception as exc:  # Kafka or PostgreSQL away: rows stay pending and the next pass retries
                    self._failures.inc()
                    log.warning("outbox relay pass failed producer=%s error=%r", self.producer, exc)
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=BUSY_RETRY_S if published is None else 1.0)
        finally:
            if kafka is not None:  # bounded: with Kafka away, stop() would wait out every queued send
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(kafka.stop(), timeout=10)
