"""The `logs.raw` subscriber: parse each chunk in Rust, then count it once in PostgreSQL, then commit Kafka."""

import asyncio
import logging
from typing import Annotated

import asyncpg
from aiokafka import ConsumerRecord
from faststream import Context
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError

import logparse
from outrider_analyzer import metrics
from outrider_analyzer.store import save_chunk
from outrider_common.events import LogChunk

log = logging.getLogger(__name__)


def _headers(record: ConsumerRecord) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in record.headers}


async def on_log_chunks(
    msg: KafkaMessage,
    pool: Annotated[asyncpg.Pool, Context("pool")],
    broker: Annotated[KafkaBroker, Context("broker")],
    dead_letter_topic: Annotated[str, Context("dead_letter_topic")],
    bucket_seconds: Annotated[int, Context("bucket_seconds")],
) -> None:
    """Handle one batch of `logs.raw` records.

    The aggregates and the chunk ids go to PostgreSQL in one transaction; only then are Kafka offsets committed.
    A crash before the commit re-delivers the batch, and the chunk ids make the replay count nothing twice.
    """
    records: tuple[ConsumerRecord, ...] = msg.raw_message
    parsed: list[tuple[LogChunk, logparse.ChunkStats, int]] = []
    for record in records:
        headers = _headers(record)
        try:
            chunk = LogChunk.from_headers(headers)
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            await broker.publish(
                record.value,
                dead_letter_topic,
                key=record.key,
                headers={
                    **headers,
                    "dead-letter-reason": f"bad headers: {reason}"[:1000],
                    "dead-letter-source": f"{record.topic}/{record.partition}/{record.offset}",
                },
            )
            metrics.CHUNKS.labels("dead_letter").inc()
            log.warning("dead-lettered record offset=%s reason=%s", record.offset, reason)
            continue
        # Rust releases the GIL, so the event loop keeps serving while a chunk is parsed.
        stats = await asyncio.to_thread(logparse.parse_chunk, record.value or b"", chunk.log_type, bucket_seconds)
        parsed.append((chunk, stats, len(record.value or b"")))

    with metrics.FLUSH_SECONDS.time():
        async with pool.acquire() as conn, conn.transaction():
            outcomes = [await save_chunk(conn, chunk, stats) for chunk, stats, _ in parsed]
    for (_, stats, size), counted in zip(parsed, outcomes, strict=True):
        if not counted:
            metrics.CHUNKS.labels("duplicate").inc()
            continue
        metrics.CHUNKS.labels("counted").inc()
        metrics.LINES.labels(stats.log_type or "unknown").inc(stats.lines)
        metrics.BYTES.inc(size)
        for reason, n in stats.bad_lines.items():
            metrics.BAD_LINES.labels(reason).inc(n)
    await msg.ack()
