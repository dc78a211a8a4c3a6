"""The `logs.raw` subscriber: parse each chunk in Rust and queue it for the flusher, which commits the offsets."""

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError, OffsetOutOfRangeError
from faststream.kafka import KafkaBroker, KafkaMessage
from opentelemetry import propagate, trace
from pydantic import ValidationError

import logparse
from outrider_analyzer import metrics
from outrider_analyzer.pipeline import DeadLetter, Flusher, Handled, Reread, header_text
from outrider_common.events import LogChunk
from outrider_common.kafka import client_options
from outrider_common.settings import KafkaSettings
from outrider_common.topics import DEAD_LETTER_VALUE, dead_letter_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# The headers the `logs.raw` contract reads: one of them without a value or not UTF-8 makes the record a dead letter.
CONTRACT_HEADERS = frozenset(LogChunk.model_fields)


def _unreadable(value: bytes | None) -> str | None:
    """Why a header value is not text, or None if it is."""
    if value is None:
        return "no value"
    try:
        value.decode()
    except UnicodeDecodeError:
        return "not UTF-8"
    return None


async def readable_headers(
    records: tuple[ConsumerRecord, ...],
    parse: Callable[[tuple[ConsumerRecord, ...]], Awaitable[KafkaMessage]],
) -> KafkaMessage:
    """The subscriber's parser: FastStream's own (`parse`), shown header values it can decode.

    aiokafka hands header values over as they came, None or any bytes, and FastStream's batch parser decodes every
    record's as UTF-8: one such value failed the whole batch before the handler ran, and with manual commit the
    next batch's commit went past it. The message keeps the records as they are, for `_handle` to judge.
    """
    try:
        return await parse(records)
    except (AttributeError, UnicodeDecodeError):  # a value None, or not UTF-8
        pass
    shown = tuple(dataclasses.replace(r, headers=[(k, header_text(v).encode()) for k, v in r.headers]) for r in records)
    msg = await parse(shown)
    msg.raw_message = cast(Any, records)
    return msg


async def as_itself(msg: KafkaMessage) -> KafkaMessage:
    """The subscriber's decoder: the batch's message itself is what the handler is called with.

    The handler reads the records (`msg.raw_message`), so FastStream's own batch decoding, which re-parses every
    record into a message of its own, is skipped (py-spy: 2.6 % of the event loop). Handed over as the body, the
    message needs no `Context` parameter either: fast_depends resolves each of those in a worker thread, behind an
    anyio task group, on every batch (py-spy: ~6 % of the event loop for the three hops this and the handler's
    two settings took). Async, so FastStream awaits it instead of running it in a worker thread too.
    """
    return msg


def log_chunk_handler(flusher: Flusher, bucket_seconds: int) -> Callable[[Any], Awaitable[None]]:
    """The `logs.raw` batch handler, bound to the flusher and the bucket width."""

    async def on_log_chunks(batch: Any) -> None:  # the KafkaMessage `as_itself` passes on; `Any`: nothing to check
        """Handle one batch of `logs.raw` records (it may span partitions).

        Nothing is committed here: the batch's parse starts in a worker thread and goes to the flusher's queue
        unfinished, so this returns at once and the next fetch overlaps the parse (zstd and Rust run without the
        GIL, on all cores). The flusher writes the chunks with their ids in one PostgreSQL transaction and only
        then commits their offsets.
        """
        msg = cast(KafkaMessage, batch)
        records: tuple[ConsumerRecord, ...] = msg.raw_message
        handling = asyncio.ensure_future(_handle(records, bucket_seconds))
        await flusher.add(cast(AIOKafkaConsumer, msg.consumer), handling, sum(len(r.value or b"") for r in records))

    return on_log_chunks


async def _handle(records: tuple[ConsumerRecord, ...], bucket_seconds: int) -> list[Handled]:
    """Validate each record's headers, then expand and parse the valid ones in one Rust call (GIL released once)."""
    handled: list[Handled | None] = []  # in record order; None until parsed
    parsing: list[tuple[int, ConsumerRecord, dict[str, str], LogChunk, trace.Span]] = []
    for record in records:
        headers = {k: header_text(v) for k, v in record.headers}
        unreadable = [f"{k}: {why}" for k, v in record.headers if k in CONTRACT_HEADERS and (why := _unreadable(v))]
        if unreadable:
            handled.append(_dead(record, headers, f"bad headers: {'; '.join(unreadable)}"))
            continue
        try:
            chunk = LogChunk.from_headers(headers)
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            handled.append(_dead(record, headers, f"bad headers: {reason}"))
            continue
        # Each chunk's span continues the trace of the upload that produced it (W3C context in the record headers).
        span = tracer.start_span(
            "analyzer parse chunk", context=propagate.extract(headers), attributes={"outrider.chunk_id": chunk.chunk_id}
        )
        parsing.append((len(handled), record, headers, chunk, span))
        handled.append(None)
    items: list[tuple[bytes, str | None, bool]] = [
        (r.value or b"", c.log_type, c.encoding == "zstd") for _, r, _, c, _ in parsing
    ]
    try:
        results = await asyncio.to_thread(logparse.parse_chunks, items, bucket_seconds)
    except BaseException as exc:  # failed or cancelled: the spans say why, and still end (so they are exported)
        for *_, span in parsing:
            span.record_exception(exc)
            span.set_status(trace.StatusCode.ERROR, repr(exc))
        raise
    finally:
        for *_, span in parsing:
            span.end()
    for (i, record, headers, chunk, span), result in zip(parsing, results, strict=True):
        if isinstance(result, str):
            handled[i] = _dead(record, headers, f"bad value: {result}")
        else:
            tp = TopicPartition(record.topic, record.partition)
            handled[i] = Handled(tp, record.offset, result.size, chunk, result, span.get_span_context())
    return [h for h in handled if h is not None]


def _dead(record: ConsumerRecord, headers: dict[str, str], reason: str) -> Handled:
    dead = DeadLetter.of(record, headers, reason)
    return Handled(TopicPartition(record.topic, record.partition), record.offset, len(dead.value), dead=dead)


def rereader(settings: KafkaSettings) -> Reread:
    """What the flusher calls to read one record again, at its offset, with a consumer of its own (no group)."""

    async def reread(tp: TopicPartition, offset: int) -> ConsumerRecord | None:
        consumer = AIOKafkaConsumer(
            **client_options(settings), client_id="outrider-analyzer-reread", group_id=None,
            enable_auto_commit=False, auto_offset_reset="none",
        )  # fmt: skip
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, offset)
            async with asyncio.timeout(30):
                record: ConsumerRecord = await consumer.getone(tp)
        except OffsetOutOfRangeError:  # retention removed it
            return None
        finally:
            await consumer.stop()
        return record if record.offset == offset else None

    return reread


def dead_letterer(broker: KafkaBroker, topic: str) -> Callable[[DeadLetter], Awaitable[None]]:
    """What the flusher calls to publish a record that breaks the contract, with its reason, to `topic`."""

    async def publish(dead: DeadLetter) -> None:
        headers = dead_letter_headers(dead.headers, reason=dead.reason, source=dead.source)
        try:
            await broker.publish(dead.value, topic, key=dead.key, headers=headers)
        except MessageSizeTooLargeError as exc:  # the producer's own check, or the broker's refusal
            if not dead.value:
                raise  # the headers alone too large: the flusher tries again, and the log says why
            # Refused for good, the record with its headers over the size limit: sent as it is, it would be retried
            # forever and hold up its partition. The reason, the source and the headers still say what it was.
            log.error(
                "dead letter sent without its value source=%s size=%d error=%r", dead.source, len(dead.value), exc
            )
            headers[DEAD_LETTER_VALUE] = f"dropped ({len(dead.value)} bytes): {exc}"[:1000]
            await broker.publish(b"", topic, key=dead.key, headers=headers)
        metrics.CHUNKS.labels("dead_letter").inc()
        log.warning("dead-lettered record source=%s reason=%s", dead.source, dead.reason)

    return publish
