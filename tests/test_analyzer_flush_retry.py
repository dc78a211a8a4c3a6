"""The flusher's metrics when a lot lands in parts: written in halves around a chunk PostgreSQL refuses, then retried
after a transient failure, each chunk is counted once (against real PostgreSQL, without Kafka)."""

import asyncio
import uuid
from typing import cast

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

import logparse
from outrider_analyzer.findings import Thresholds
from outrider_analyzer.pipeline import DeadLetter, Flusher, Handled
from outrider_common.db import Database
from outrider_common.events import LogChunk

pytestmark = [pytest.mark.postgres]
TP = TopicPartition("t.logs.raw", 0)


def handled(engagement: uuid.UUID, offset: int, controller: str) -> Handled:
    """A parsed chunk of five requests to `controller`."""
    data = b"".join(
        b'{"controller":"%s","action":"show","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:%02dZ"}\n'
        % (controller.encode(), i)
        for i in range(5)
    )
    chunk = LogChunk(engagement_id=engagement, source="t", file_id="f", offset=offset * 1000, lines=5)
    stats = logparse.parse_chunk(data, "production_json")
    return Handled(TP, offset, stats.size, chunk, stats)


class NoPartitions:
    """A consumer that owns nothing: the flusher writes and commits no offsets."""

    def assignment(self) -> set[TopicPartition]:
        return set()


async def flush_lot(flusher: Flusher, lot: list[Handled]) -> None:
    """Run `flusher` over one lot already parsed, until it has written (or dead-lettered) all of it."""
    running = asyncio.create_task(flusher.run())
    try:
        done: asyncio.Future[list[Handled]] = asyncio.get_running_loop().create_future()
        done.set_result(lot)
        await flusher.add(cast(AIOKafkaConsumer, NoPartitions()), done, sum(h.size for h in lot))
        async with asyncio.timeout(30):
            await flusher.drained()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_chunks_written_before_a_retry_are_counted_once(database_dsn: str) -> None:
    db = Database(database_dsn)
    await db.open()
    conn = await asyncpg.connect(database_dsn)
    try:
        await conn.execute("ALTER TABLE log_stats ADD CONSTRAINT no_poison CHECK (key <> 'Poison#show') NOT VALID")
        sent: list[DeadLetter] = []
        failures = iter([ConnectionError("Kafka away for a moment")])

        async def dead_letter(dead: DeadLetter) -> None:
            if (failure := next(failures, None)) is not None:
                raise failure  # the lot fails after its first three chunks were written: it is retried
            sent.append(dead)

        async def gone(tp: TopicPartition, offset: int) -> None:
            return None

        flusher = Flusher(
            db, dead_letter, gone, bucket_seconds=60, limits=Thresholds(), wake_relay=asyncio.Event(),
            max_pending_bytes=1 << 20, retry_max_seconds=0.1,
        )  # fmt: skip
        engagement = uuid.uuid4()
        # In halves: [A, B] lands, [C, Poison] is refused, [C] lands, [Poison] is refused and its dead letter fails.
        lot = [handled(engagement, i, c) for i, c in enumerate(("A", "B", "C", "Poison"))]
        before = {
            "counted": sample("outrider_analyzer_chunks_total", outcome="counted"),
            "duplicate": sample("outrider_analyzer_chunks_total", outcome="duplicate"),
            "lines": sample("outrider_analyzer_lines_total", log_type="production_json"),
            "bytes": sample("outrider_analyzer_bytes_total"),
            "failures": sample("outrider_analyzer_flush_failures_total"),
        }
        await flush_lot(flusher, lot)
        stored = await conn.fetchval("SELECT sum(count) FROM log_stats WHERE engagement_id = $1", engagement)
    finally:
        await conn.close()
        await db.close()
    assert sample("outrider_analyzer_flush_failures_total") - before["failures"] == 1
    assert stored == 15
    assert [d.reason.split(":")[0] for d in sent] == ["refused by PostgreSQL"]
    assert sample("outrider_analyzer_chunks_total", outcome="counted") - before["counted"] == 3
    assert sample("outrider_analyzer_chunks_total", outcome="duplicate") - before["duplicate"] == 0
    assert sample("outrider_analyzer_lines_total", log_type="production_json") - before["lines"] == 15
    assert sample("outrider_analyzer_bytes_total") - before["bytes"] == sum(h.size for h in lot[:3])
