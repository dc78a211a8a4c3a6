"""Two relays over one outbox (two tracker replicas) still publish an engagement's events in outbox order."""

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from outrider_common import outbox
from outrider_common.db import create_pool, migrate
from outrider_common.events import EngagementEvent
from outrider_common.kafka import ensure_topics
from outrider_common.settings import KafkaSettings
from outrider_common.topics import ENGAGEMENT_EVENTS

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


class HeldProducer:
    """A Kafka producer whose first send waits until released: a relay paused between claiming rows and sending."""

    def __init__(self, kafka: AIOKafkaProducer) -> None:
        self.kafka, self.sending, self.release = kafka, asyncio.Event(), asyncio.Event()

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        self.sending.set()
        await self.release.wait()
        return await self.kafka.send(*args, **kwargs)


async def read_keyed(bootstrap: str, topic: str, key: str, want: int) -> list[str]:
    """Event types of `key`'s records on `topic`, in the order of its partition, once `want` arrived (60 s at most)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    types: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while len(types) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                types += [json.loads(r.value)["type"] for r in records if r.key == key.encode()]
    finally:
        await consumer.stop()
    return types


async def test_a_relay_waits_for_the_pass_of_another_so_one_key_stays_in_order(
    database_dsn: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    await asyncio.to_thread(migrate, database_dsn)
    kafka = KafkaSettings(kafka_bootstrap_servers=kafka_bootstrap)
    await ensure_topics(kafka, [f"{topic_prefix}{ENGAGEMENT_EVENTS.name}"])
    pool = await create_pool(database_dsn)
    # Replica A and replica B: two relays of one producer, each with its own Kafka producer (as two processes have).
    relay = outbox.Relay("ordertest", kafka, lambda topic: f"{topic_prefix}{topic.name}")
    kafka_a, kafka_b = (AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True) for _ in "ab")
    await kafka_a.start()
    await kafka_b.start()
    engagement = uuid4()

    async def add(type: str) -> None:
        event = EngagementEvent(event_id=uuid4(), type=type, engagement_id=engagement, occurred_at=datetime.now(UTC))
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, producer="ordertest", topic=ENGAGEMENT_EVENTS, key=str(engagement), event=event)

    try:
        await add("touchpoint.scheduled")
        held = HeldProducer(kafka_a)
        pass_a = asyncio.create_task(relay.publish_pending(pool, held))  # type: ignore[arg-type]
        await asyncio.wait_for(held.sending.wait(), 30)  # A claimed the first event and is sending it
        await add("touchpoint.updated")
        await relay.publish_pending(pool, kafka_b)  # B's pass while A's is still on the wire
        held.release.set()
        await asyncio.wait_for(pass_a, 30)
        while await relay.publish_pending(pool, kafka_b):  # whatever is left goes out with the next passes
            pass
        pending = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    finally:
        await kafka_a.stop()
        await kafka_b.stop()
        await pool.close()
    assert pending == 0
    types = await read_keyed(kafka_bootstrap, f"{topic_prefix}{ENGAGEMENT_EVENTS.name}", str(engagement), 2)
    assert types == ["touchpoint.scheduled", "touchpoint.updated"]
