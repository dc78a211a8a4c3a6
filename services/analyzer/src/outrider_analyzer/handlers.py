"""The `logs.raw` subscriber: parse each chunk in Rust and queue it for the flusher, which commits the offsets."""

import asyncio
import logging
from typing import Annotated, cast

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream import Context
from faststream.kafka import KafkaBroker, KafkaMessage
from opentelemetry import propagate, trace
from pydantic import ValidationError

import logparse
from outrider_analyzer import metrics
from outrider_analyzer.pipeline import Flusher, Handled
from outrider_common.events import LogChunk

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


def _headers(record: ConsumerRecord) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in record.headers}


async def on_log_chunks(
    msg: KafkaMessage,
    broker: Annotated[KafkaBroker, Context("broker")],
    flusher: Annotated[Flusher, Context("flusher")],
    dead_letter_topic: Annotated[str, Context("dead_letter_topic")],
    bucket_seconds: Annotated[int, Context("bucket_seconds")],
) -> None:
    """Handle one batch of `logs.raw` records (it may span partitions).

    Nothing is committed here: the flusher writes the parsed chunks with their ids in one PostgreSQL transaction
    and only then commits their offsets, so this returns as soon as the batch is queued and the next fetch overlaps
    the write.
    """
    records: tuple[ConsumerRecord, ...] = msg.raw_message
    valid: list[tuple[ConsumerRecord, LogChunk, dict[str, str]]] = []
    rejected: list[tuple[ConsumerRecord, dict[str, str], str]] = []
    for record in records:
        headers = _headers(record)
        try:
            valid.append((record, LogChunk.from_headers(headers), headers))
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            rejected.append((record, headers, f"bad headers: {reason}"))

    async def parse(record: ConsumerRecord, chunk: LogChunk, headers: dict[str, str]) -> Handled:
        # Each chunk's span continues the trace of the upload that produced it (W3C context in the record headers).
        with tracer.start_as_current_span(
            "analyzer parse chunk", context=propagate.extract(headers), attributes={"outrider.chunk_id": chunk.chunk_id}
        ) as span:
            value = record.value or b""
            # zstd and Rust both release the GIL: a batch's chunks are expanded and parsed on all cores while the
            # event loop fetches.
            try:
                stats, size = await asyncio.to_thread(_parse, chunk, value, bucket_seconds)
            except ValueError as exc:
                rejected.append((record, headers, f"bad value: {exc}"))
                return _handled(record)
        return Handled(_tp(record), record.offset, size, chunk, stats, span.get_span_context())

    handled = list(await asyncio.gather(*(parse(*v) for v in valid)))
    for record, headers, reason in rejected:
        await _dead_letter(broker, dead_letter_topic, record, headers, reason)
        handled.append(_handled(record))
    # Sorted back into each partition's order: the flusher commits past the highest offset it has written.
    handled.sort(key=lambda h: (h.tp.topic, h.tp.partition, h.offset))
    await flusher.add(cast(AIOKafkaConsumer, msg.consumer), handled)


def _parse(chunk: LogChunk, value: bytes, bucket_seconds: int) -> tuple[logparse.ChunkStats, int]:
    lines = chunk.unpack(value)
    return logparse.parse_chunk(lines, chunk.log_type, bucket_seconds), len(lines)


def _tp(record: ConsumerRecord) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def _handled(record: ConsumerRecord) -> Handled:
    """A record that yields nothing to write (dead-lettered) but whose offset is done with."""
    return Handled(_tp(record), record.offset, len(record.value or b""))


async def _dead_letter(
    broker: KafkaBroker, topic: str, record: ConsumerRecord, headers: dict[str, str], reason: str
) -> None:
    await broker.publish(
        record.value,
        topic,
        key=record.key,
        headers={
            **headers,
            "dead-letter-reason": reason[:1000],
            "dead-letter-source": f"{record.topic}/{record.partition}/{record.offset}",
        },
    )
    metrics.CHUNKS.labels("dead_letter").inc()
    log.warning("dead-lettered record offset=%s reason=%s", record.offset, reason)
