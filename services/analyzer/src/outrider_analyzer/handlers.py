"""The `logs.raw` subscriber: parse each chunk in Rust, count it once in PostgreSQL, then commit Kafka offsets."""

import asyncio
import contextlib
import logging
from typing import Annotated, cast

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from faststream import Context
from faststream.kafka import KafkaBroker, KafkaMessage
from opentelemetry import propagate, trace
from pydantic import ValidationError

import logparse
from outrider_analyzer import metrics
from outrider_analyzer.findings import Thresholds
from outrider_analyzer.store import flush
from outrider_common.events import LogChunk

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


def _headers(record: ConsumerRecord) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in record.headers}


async def on_log_chunks(
    msg: KafkaMessage,
    pool: Annotated[asyncpg.Pool, Context("pool")],
    broker: Annotated[KafkaBroker, Context("broker")],
    dead_letter_topic: Annotated[str, Context("dead_letter_topic")],
    bucket_seconds: Annotated[int, Context("bucket_seconds")],
    thresholds: Annotated[Thresholds, Context("thresholds")],
    wake_relay: Annotated[asyncio.Event, Context("wake_relay")],
) -> None:
    """Handle one batch of `logs.raw` records (it may span partitions).

    Aggregates, chunk ids and findings go to PostgreSQL in one transaction; only then are the batch's offsets
    committed. Any failure rewinds every partition of the batch, so it is read again; the chunk ids make a replay
    count nothing twice.
    """
    records: tuple[ConsumerRecord, ...] = msg.raw_message
    consumer = cast(AIOKafkaConsumer, msg.consumer)
    first: dict[TopicPartition, int] = {}
    last: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        first[tp] = min(first.get(tp, record.offset), record.offset)
        last[tp] = max(last.get(tp, record.offset), record.offset)
    try:
        parsed, chunk_spans = await _parse(records, broker, dead_letter_topic, bucket_seconds)
        # A batch mixes chunks of many uploads: the flush links to each chunk's span rather than having one parent.
        with (
            tracer.start_as_current_span("analyzer flush", links=[trace.Link(c) for c in chunk_spans]),
            metrics.FLUSH_SECONDS.time(),
        ):
            async with pool.acquire() as conn, conn.transaction():
                flushed = await flush(conn, parsed, bucket_seconds=bucket_seconds, limits=thresholds)
    except Exception:
        metrics.FLUSH_FAILURES.inc()
        for tp, offset in first.items():
            # A partition revoked meanwhile is read by its new owner from the committed offset.
            with contextlib.suppress(IllegalStateError):
                consumer.seek(tp, offset)
        await asyncio.sleep(1.0)  # a broken database gets retries, not a hot loop
        raise
    try:
        await consumer.commit({tp: offset + 1 for tp, offset in last.items()})
    except CommitFailedError as exc:  # rebalanced mid-batch: the new owner re-reads it and the chunk ids dedupe
        log.warning("offset commit failed after flush, batch will be re-read error=%r", exc)

    metrics.FLUSH_ROWS.observe(flushed.rows)
    metrics.CHUNKS.labels("duplicate").inc(flushed.duplicates)
    for _, stats in flushed.counted:
        metrics.CHUNKS.labels("counted").inc()
        metrics.LINES.labels(stats.log_type or "unknown").inc(stats.lines)
        for reason, n in stats.bad_lines.items():
            metrics.BAD_LINES.labels(reason).inc(n)
    metrics.BYTES.inc(sum(len(r.value or b"") for r in records))
    for finding in flushed.findings:
        metrics.FINDINGS.labels(finding.rule).inc()
    if flushed.findings:
        wake_relay.set()
    for tp in last:
        highwater = consumer.highwater(tp)
        if highwater is not None:
            metrics.LAG.labels(str(tp.partition)).set(max(highwater - last[tp] - 1, 0))


async def _dead_letter(
    broker: KafkaBroker, topic: str, record: ConsumerRecord, headers: dict[str, str], exc: ValidationError
) -> None:
    reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    await broker.publish(
        record.value,
        topic,
        key=record.key,
        headers={
            **headers,
            "dead-letter-reason": f"bad headers: {reason}"[:1000],
            "dead-letter-source": f"{record.topic}/{record.partition}/{record.offset}",
        },
    )
    metrics.CHUNKS.labels("dead_letter").inc()
    log.warning("dead-lettered record offset=%s reason=%s", record.offset, reason)


async def _parse(
    records: tuple[ConsumerRecord, ...], broker: KafkaBroker, dead_letter_topic: str, bucket_seconds: int
) -> tuple[list[tuple[LogChunk, logparse.ChunkStats]], list[trace.SpanContext]]:
    """Validate headers (dead-lettering records without a valid contract) and parse the rest in Rust.

    Each chunk's span continues the trace of the upload that produced it (W3C context in the record headers).
    """
    valid: list[tuple[ConsumerRecord, LogChunk, dict[str, str]]] = []
    for record in records:
        headers = _headers(record)
        try:
            valid.append((record, LogChunk.from_headers(headers), headers))
        except ValidationError as exc:
            await _dead_letter(broker, dead_letter_topic, record, headers, exc)

    async def parse(record: ConsumerRecord, chunk: LogChunk, headers: dict[str, str]) -> logparse.ChunkStats:
        with tracer.start_as_current_span(
            "analyzer parse chunk", context=propagate.extract(headers), attributes={"outrider.chunk_id": chunk.chunk_id}
        ) as span:
            spans.append(span.get_span_context())
            # Rust releases the GIL: the chunks of a batch are parsed on all cores while the event loop serves.
            return await asyncio.to_thread(logparse.parse_chunk, record.value or b"", chunk.log_type, bucket_seconds)

    spans: list[trace.SpanContext] = []
    stats = await asyncio.gather(*(parse(*v) for v in valid))
    parsed = [(chunk, s) for (_, chunk, _), s in zip(valid, stats, strict=True)]
    return parsed, spans
