"""`POST /v1/engagements/{id}/logs`: stream a log file's bytes into `logs.raw` as chunks of whole lines."""

import asyncio
import logging
import zlib
from collections import deque
from collections.abc import Iterator
from typing import Annotated
from uuid import UUID

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from faststream.kafka import KafkaBroker
from opentelemetry import trace
from pydantic import BaseModel

from outrider_common.events import LogChunk, LogType, PrintableStr
from outrider_common.topics import LOGS_RAW
from outrider_ingest import metrics
from outrider_ingest.auth import authorize
from outrider_ingest.chunking import LineChunker, LineTooLong, Piece
from outrider_ingest.settings import IngestSettings

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
router = APIRouter(prefix="/v1", tags=["logs"])
# Content codings the body may come in (RFC 9110 §8.4.1: names are case-insensitive, x-gzip is gzip). zlib tells
# gzip from deflate's zlib format by the header (wbits=47), so both cost nothing; zstd and br would need a streaming
# decoder with an output bound (the bomb guard), which no dependency of ingest has.
CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
ACCEPTED_CODINGS = "gzip, x-gzip, deflate, identity"


class BodyTooLarge(ValueError):
    """The (decompressed) body exceeds the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class UnsupportedCoding(ValueError):
    """The body's Content-Encoding is one ingest cannot expand."""


def content_coding(values: list[str]) -> str | None:
    """The coding that expands the body (`gzip` or `deflate`), or None for a body sent as is.

    `values` are the request's Content-Encoding headers; a coding ingest cannot expand, or several stacked, raise
    `UnsupportedCoding`: stored unexpanded, the bytes would count as bad lines and the upload would look accepted.
    """
    codings = [c.strip().lower() for v in values for c in v.split(",")]
    applied = [c for c in codings if c and c != "identity"]
    if not applied:
        return None
    if len(applied) > 1 or applied[0] not in CODINGS:
        raise UnsupportedCoding(", ".join(values))
    return CODINGS[applied[0]]


class UploadAccepted(BaseModel):
    """What Kafka acknowledged for one upload."""

    bytes: int
    lines: int
    records: int
    first_offset: int
    next_offset: int


@router.post(
    "/engagements/{engagement_id}/logs",
    status_code=202,
    summary="Upload log lines (NDJSON, optionally gzip- or deflate-encoded) for an engagement",
    dependencies=[Depends(authorize)],
    responses={
        400: {"description": "The body is not valid in its Content-Encoding"},
        401: {"description": "Missing, unknown or revoked token"},
        403: {"description": "The token belongs to another engagement"},
        413: {"description": "A line or the whole body exceeds its size limit"},
        415: {
            "description": f"A Content-Encoding other than {ACCEPTED_CODINGS} (named in Accept-Encoding), or a "
            "multipart/form-data body (a form upload, `curl -F`): send the file itself as the body"
        },
        503: {"description": "Kafka did not acknowledge in time; retry after Retry-After seconds"},
    },
)
async def upload_logs(
    engagement_id: UUID,
    request: Request,
    source: Annotated[PrintableStr, Query(min_length=1, max_length=200, description="Host that read the file.")],
    file_id: Annotated[PrintableStr, Query(min_length=1, max_length=500, description="Stable identity of the file.")],
    offset: Annotated[int, Query(ge=0, description="Byte offset of the body's first byte in the file.")] = 0,
    log_type: Annotated[LogType | None, Query(description="Log type; detected from content when absent.")] = None,
) -> UploadAccepted:
    """Answer only after Kafka acknowledged every record, so a 202 means the lines are durable.

    The body is NDJSON sent as is or with `Content-Encoding` `gzip` (or `x-gzip`) or `deflate` (zlib format), in
    any letter case; any other coding (zstd, br, several stacked) is refused with 415 before a byte is read, as is
    a form upload (`multipart/form-data`, what `curl -F file=@x.log` sends), whose boundaries and part headers would
    be stored as lines: send the file as the body (`curl --data-binary @x.log`).

    Records are cut at the last newline within each `chunk_bytes` window, so the same byte range always yields the
    same chunk ids: after a failure, resend the same range (from `offset`, or from the offset a 503 names, to the
    same end) and the analyzer drops what it already counted.
    """
    settings: IngestSettings = request.app.state.settings
    broker: KafkaBroker = request.app.state.broker
    topic = settings.topic(LOGS_RAW)
    chunker = LineChunker(start_offset=offset, target=settings.chunk_bytes, max_line=settings.max_line_bytes)
    if request.headers.get("content-type", "").strip().lower().startswith("multipart/"):
        metrics.REJECTED.labels("form_upload").inc()
        raise HTTPException(
            415, "a multipart/form-data body is a form, not log lines: send the file itself as the body "
            "(curl --data-binary @production_json.log, not curl -F)",
        )  # fmt: skip
    try:
        coding = content_coding(request.headers.getlist("content-encoding"))
    except UnsupportedCoding as exc:
        metrics.REJECTED.labels("unsupported_encoding").inc()
        raise HTTPException(
            415,
            f"Content-Encoding {str(exc)!r} is not supported; accepted: {ACCEPTED_CODINGS}",
            headers={"Accept-Encoding": ACCEPTED_CODINGS},  # RFC 9110 §12.5.3: what the server accepts
        ) from exc
    gunzip = zlib.decompressobj(wbits=47) if coding else None
    accepted = UploadAccepted(bytes=0, lines=0, records=0, first_offset=offset, next_offset=offset)
    received = 0

    # Up to `max_in_flight` records are produced at once (acks=all waits a round trip each); the reply still
    # reports only the run of records Kafka acknowledged, in file order.
    in_flight: deque[tuple[Piece, asyncio.Task[None]]] = deque()

    async def send(piece: Piece) -> None:
        chunk = LogChunk(
            engagement_id=engagement_id,
            source=source,
            file_id=file_id,
            offset=piece.offset,
            lines=piece.lines,
            log_type=log_type,
            encoding="zstd",
        )
        metrics.IN_FLIGHT.inc(len(piece.data))
        try:
            value = await asyncio.to_thread(chunk.pack, piece.data)  # compressed off the event loop
            with metrics.PRODUCE_SECONDS.time():
                await asyncio.wait_for(
                    broker.publish(value, topic, key=chunk.key, headers=chunk.to_headers()),
                    settings.produce_timeout_s,
                )
        finally:
            metrics.IN_FLIGHT.dec(len(piece.data))

    async def settle(keep: int) -> None:
        while len(in_flight) > keep:
            piece, task = in_flight.popleft()
            try:
                await task
            except (KafkaError, TimeoutError) as exc:
                metrics.RECORDS.labels("failed").inc()
                log.warning("produce failed topic=%s offset=%s error=%r", topic, piece.offset, exc)
                raise HTTPException(
                    503,
                    f"Kafka did not acknowledge the data; retry from offset {piece.offset}",
                    headers={"Retry-After": "5"},
                ) from exc
            metrics.RECORDS.labels("acked").inc()
            metrics.BYTES.labels("accepted").inc(len(piece.data))
            metrics.LINES.inc(piece.lines)
            accepted.bytes += len(piece.data)
            accepted.lines += piece.lines
            accepted.records += 1
            accepted.next_offset = piece.offset + len(piece.data)

    async def produce(piece: Piece) -> None:
        in_flight.append((piece, asyncio.create_task(send(piece))))
        await settle(settings.max_in_flight - 1)

    def expand(raw: bytes) -> Iterator[bytes]:
        """What `raw` expands to, in pieces of at most `chunk_bytes`: memory stays bounded by the piece, not by the
        body, and a compression bomb is refused like any oversized body once the expanded total passes the limit."""
        nonlocal received
        data = raw
        while data:
            piece = gunzip.decompress(data, settings.chunk_bytes) if gunzip else data
            received += len(piece)
            if received > settings.max_body_bytes:
                raise BodyTooLarge(settings.max_body_bytes)
            yield piece
            data = gunzip.unconsumed_tail if gunzip else b""

    attributes = {"outrider.engagement_id": str(engagement_id), "outrider.source": source, "outrider.file_id": file_id}
    # The Kafka publish spans (FastStream's middleware) nest under this one, and the analyzer continues the trace.
    with tracer.start_as_current_span("ingest upload", attributes=attributes):
        try:
            async for raw in request.stream():
                for data in expand(raw):
                    for piece in chunker.feed(data):
                        await produce(piece)
            if gunzip:
                if not gunzip.eof:
                    raise zlib.error(f"truncated {coding} stream")
                for piece in chunker.feed(gunzip.flush()):
                    await produce(piece)
            for piece in chunker.finish():
                await produce(piece)
            await settle(0)
        except LineTooLong as exc:
            await settle(0)  # the reply names what Kafka took before the refusal
            metrics.REJECTED.labels("line_too_long").inc()
            raise HTTPException(413, f"{exc}; lines before offset {accepted.next_offset} were accepted") from exc
        except BodyTooLarge as exc:
            await settle(0)
            metrics.REJECTED.labels("body_too_large").inc()
            raise HTTPException(
                413,
                f"body expands to more than {exc.limit} bytes; lines before offset {accepted.next_offset}"
                " were accepted, send the rest in another request",
            ) from exc
        except zlib.error as exc:
            await settle(0)
            metrics.REJECTED.labels(f"bad_{coding}").inc()
            raise HTTPException(400, f"body is not valid {coding}: {exc}") from exc
        finally:
            # After a 503 the later records may still be in flight: let them finish (a resend dedupes them).
            await asyncio.gather(*(task for _, task in in_flight), return_exceptions=True)
        return accepted
