"""`POST /v1/engagements/{id}/logs`: stream a log file's bytes into `logs.raw` as chunks of whole lines."""

import asyncio
import logging
import zlib
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Annotated
from uuid import UUID

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from faststream.kafka import KafkaBroker
from opentelemetry import trace
from pydantic import BaseModel, Field

from outrider_common.events import LogChunk, LogType, PrintableStr
from outrider_common.topics import LOGS_RAW
from outrider_ingest import metrics
from outrider_ingest.auth import authorize
from outrider_ingest.chunking import LineChunker, LineTooLong, Piece
from outrider_ingest.outage import retry_later
from outrider_ingest.settings import IngestSettings

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
router = APIRouter(prefix="/v1", tags=["logs"])
# Content codings the body may come in (RFC 9110 §8.4.1: names are case-insensitive, x-gzip is gzip). zlib tells
# gzip from deflate's zlib format by the header (wbits=47), so both cost nothing; zstd and br would need a streaming
# decoder with an output bound (the bomb guard), which no dependency of ingest has.
CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
ACCEPTED_CODINGS = "gzip, x-gzip, deflate, identity"
# On a refusal after records went to Kafka: the offset the lines were taken up to, for the client to go on from there.
NEXT_OFFSET = "Outrider-Next-Offset"
# The analyzer stores each chunk id under a btree index, whose entries cannot pass 2,704 bytes; this leaves room for
# the offset's digits and the engagement id.
MAX_CHUNK_ID_BYTES = 1024


class BodyTooLarge(ValueError):
    """The body exceeds the configured limit, expanded or (`as_sent`) as it came over the wire."""

    def __init__(self, limit: int, *, as_sent: bool = False) -> None:
        super().__init__(limit)
        self.limit = limit
        self.as_sent = as_sent


class BodyIdle(Exception):
    """No byte of the body came for `seconds`, or (`whole`) the body took longer than that."""

    def __init__(self, seconds: float, *, whole: bool = False) -> None:
        super().__init__(seconds)
        self.seconds, self.whole = seconds, whole


class UnsupportedCoding(ValueError):
    """The body's Content-Encoding is one ingest cannot expand."""


class Inflater:
    """Expands a `gzip` or `deflate` body fed as it arrives, in pieces of at most `max_length` bytes.

    A gzip body may hold several members one after another (RFC 1952 §2.2: what `cat a.gz b.gz`, bgzip and
    `pigz -i` write), expanded in turn. A deflate body is one zlib stream (RFC 9110 §8.4.1.2, RFC 1950). Bytes after
    the last member or the zlib stream raise `zlib.error`: skipped, they would be lines lost behind a 202.
    """

    def __init__(self, coding: str, max_length: int) -> None:
        self.coding = coding
        self.max_length = max_length
        self._stream = zlib.decompressobj(wbits=47)  # gzip or zlib, told apart by the header
        self._members = 1
        self._member_start = 0  # where the current member starts in the body
        self._read = 0  # body bytes fed so far

    def feed(self, raw: bytes) -> Iterator[bytes]:
        """What `raw`, the next bytes of the body, expands to."""
        self._read += len(raw)
        data = raw  # always a suffix of `raw`: unconsumed_tail and unused_data are
        while data:
            if self._stream.eof:
                self._next_member(start=self._read - len(data))
            try:
                piece = self._stream.decompress(data, self.max_length)
            except zlib.error as exc:
                if self._members == 1:
                    raise
                raise zlib.error(
                    f"bytes {self._member_start}+ of the request body, after gzip member {self._members - 1}, are"
                    f" not a gzip member ({exc}); only another gzip member may follow one"
                ) from exc
            yield piece
            # At a stream's end the rest is in unused_data; unconsumed_tail may hold it too and, fed again to the
            # ended stream, would never shrink.
            data = self._stream.unused_data if self._stream.eof else self._stream.unconsumed_tail

    def finish(self) -> bytes:
        """The rest of the expansion once the body has ended; raises `zlib.error` when it was cut short."""
        if not self._stream.eof:
            member = f" in gzip member {self._members} (from byte {self._member_start})" if self._members > 1 else ""
            raise zlib.error(f"truncated {self.coding} stream{member}")
        return self._stream.flush()

    def _next_member(self, *, start: int) -> None:
        if self.coding != "gzip":
            raise zlib.error(f"bytes {start}+ of the request body follow the end of its zlib stream")
        self._stream = zlib.decompressobj(wbits=31)  # gzip only: a member must follow a member
        self._members += 1
        self._member_start = start


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
    lines: int = Field(description="Lines taken, blank ones included (which the analyzer does not count).")
    records: int
    first_offset: int
    next_offset: int


@asynccontextmanager
async def upload_slot(request: Request, engagement_id: UUID) -> AsyncIterator[None]:
    """One of `max_uploads` places, held while an upload is taken: each holds up to `(max_in_flight + 1) *
    chunk_bytes + max_line_bytes` of log bytes (`produce`), so past that a client is told to come back (503 +
    Retry-After) rather than memory growing without bound.
    One engagement takes at most `uploads_per_engagement` of them, so one token cannot keep every other engagement
    out. Released before the answer is sent, so a client's next upload finds it free."""
    state, settings = request.app.state, request.app.state.settings
    if state.uploads >= settings.max_uploads:
        metrics.REJECTED.labels("busy").inc()
        raise retry_later(f"ingest is taking {state.uploads} uploads at once, its limit; retry later")
    if (taking := state.uploads_of[engagement_id]) >= settings.uploads_per_engagement:
        metrics.REJECTED.labels("engagement_busy").inc()
        uploads = "upload" if taking == 1 else "uploads"
        raise retry_later(f"ingest is taking {taking} {uploads} of this engagement at once, its limit; retry later")
    state.uploads += 1
    state.uploads_of[engagement_id] += 1
    metrics.UPLOADS.set(state.uploads)
    try:
        yield
    finally:
        state.uploads -= 1
        state.uploads_of[engagement_id] -= 1
        if not state.uploads_of[engagement_id]:  # one key per engagement uploading now, not per one that ever did
            del state.uploads_of[engagement_id]
        metrics.UPLOADS.set(state.uploads)


@router.post(
    "/engagements/{engagement_id}/logs",
    status_code=202,
    summary="Upload log lines (NDJSON, optionally gzip- or deflate-encoded) for an engagement",
    dependencies=[Depends(authorize)],
    responses={
        400: {
            "description": "The body is not valid in its Content-Encoding, or has bytes after its last gzip member "
            "or its zlib stream"
        },
        401: {"description": "Missing, unknown or revoked token"},
        403: {"description": "The token belongs to another engagement"},
        408: {
            "description": "No byte of the body came for OUTRIDER_BODY_IDLE_TIMEOUT_S, or the whole body took longer "
            f"than OUTRIDER_BODY_TIMEOUT_S; the connection is closed and the {NEXT_OFFSET} header says up to which "
            "offset the lines before it were taken"
        },
        413: {
            "description": "A line or the whole body, expanded or as sent, exceeds its size limit; the "
            f"{NEXT_OFFSET} header says up to which offset the lines before it were taken"
        },
        415: {
            "description": f"A Content-Encoding other than {ACCEPTED_CODINGS} (named in Accept-Encoding), or a "
            "multipart/form-data body (a form upload, `curl -F`): send the file itself as the body"
        },
        422: {
            "description": f"A parameter is invalid, or source and file_id together make a chunk id over "
            f"{MAX_CHUNK_ID_BYTES} bytes (UTF-8, percent-encoded when either holds a `|`)"
        },
        503: {
            "description": "Kafka did not acknowledge in time, PostgreSQL could not check the token, or ingest is "
            "taking as many uploads as it may at once (OUTRIDER_MAX_UPLOADS), or as many of this engagement "
            "(OUTRIDER_MAX_UPLOADS_PER_ENGAGEMENT); retry after Retry-After seconds"
        },
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

    The body is NDJSON sent as is or with `Content-Encoding` `gzip` (or `x-gzip`; one member or several, as
    `cat a.gz b.gz` makes) or `deflate` (zlib format), in any letter case; any other coding (zstd, br, several
    stacked) is refused with 415 before a byte is read, as is a form upload (`multipart/form-data`, what
    `curl -F file=@x.log` sends), whose boundaries and part headers would be stored as lines: send the file as the
    body (`curl --data-binary @x.log`).

    Records are cut at the last newline within each `chunk_bytes` window, so the same byte range always yields the
    same chunk ids: after a failure, resend the same range (from `offset`, or from the offset a 503 names, to the
    same end) and the analyzer drops what it already counted.
    """
    chunk_id = LogChunk(engagement_id=engagement_id, source=source, file_id=file_id, offset=offset, lines=0).chunk_id
    if (size := len(chunk_id.encode())) > MAX_CHUNK_ID_BYTES:  # taken, its chunks could never be stored nor replayed
        metrics.REJECTED.labels("names_too_long").inc()
        raise HTTPException(
            422, f"source and file_id make a chunk id of {size} bytes, over the {MAX_CHUNK_ID_BYTES} the analyzer can "
            "store (UTF-8; each byte three when percent-encoded, as both names are when either holds a `|`): use "
            "shorter names",
        )  # fmt: skip
    async with upload_slot(request, engagement_id):  # after the token check: a refused token takes no place
        return await _receive(request, engagement_id, source, file_id, offset, log_type)


async def _receive(
    request: Request, engagement_id: UUID, source: str, file_id: str, offset: int, log_type: LogType | None
) -> UploadAccepted:
    """`upload_logs`' work, in one of the upload places."""
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
    inflater = Inflater(coding, settings.chunk_bytes) if coding else None
    accepted = UploadAccepted(bytes=0, lines=0, records=0, first_offset=offset, next_offset=offset)
    received = sent = 0

    # Up to `max_in_flight` records, of up to `budget` bytes together, are produced at once (acks=all waits a round
    # trip each); the reply still reports only the run of records Kafka acknowledged, in file order.
    in_flight: deque[tuple[Piece, asyncio.Task[None]]] = deque()
    budget = settings.max_in_flight * settings.chunk_bytes
    held = 0  # bytes of the pieces in `in_flight`

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

    async def settle(keep: int, room: int = 0) -> None:
        """Wait for the oldest records until at most `keep` are in flight and `room` more bytes fit the budget, or
        none is: a piece larger than the budget goes alone, so an upload always moves on."""
        nonlocal held
        while len(in_flight) > keep or (in_flight and held + room > budget):
            piece, task = in_flight.popleft()
            held -= len(piece.data)
            try:
                await task
            except (KafkaError, TimeoutError) as exc:
                metrics.RECORDS.labels("failed").inc()
                log.warning("produce failed engagement_id=%s topic=%s offset=%s error=%r",
                            engagement_id, topic, piece.offset, exc)  # fmt: skip
                raise retry_later(f"Kafka did not acknowledge the data; retry from offset {piece.offset}") from exc
            metrics.RECORDS.labels("acked").inc()
            metrics.BYTES.labels("accepted").inc(len(piece.data))
            metrics.LINES.inc(piece.lines)
            accepted.bytes += len(piece.data)
            accepted.lines += piece.lines
            accepted.records += 1
            accepted.next_offset = piece.offset + len(piece.data)

    async def produce(piece: Piece) -> None:
        """Send `piece` once it fits, then wait for room for a next one of `chunk_bytes`, reading no more meanwhile.

        A piece ends at its last line's end, so long lines make pieces of up to `max_line_bytes`: counted only by
        records, an upload would hold `max_in_flight` of those while Kafka is slow. Pieces of `chunk_bytes` at most
        (lines of the usual size) never wait for the budget, only for a record's place."""
        nonlocal held
        await settle(settings.max_in_flight - 1, len(piece.data))
        held += len(piece.data)
        in_flight.append((piece, asyncio.create_task(send(piece))))
        await settle(settings.max_in_flight - 1, settings.chunk_bytes)

    def expand(pieces: Iterable[bytes]) -> Iterator[bytes]:
        """`pieces` of the expanded body, counted: a compression bomb is refused like any oversized body once the
        expanded total, over every gzip member, passes the limit; memory stays bounded by the piece."""
        nonlocal received
        for piece in pieces:
            received += len(piece)
            if received > settings.max_body_bytes:
                raise BodyTooLarge(settings.max_body_bytes)
            yield piece

    async def arrivals() -> AsyncIterator[bytes]:
        """The body as it comes, counted as sent: the wire bytes are limited too, or empty gzip members (20 bytes
        that expand to nothing) would stream without end. A body that stops coming gives its upload place back."""
        nonlocal sent
        stream = request.stream()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.body_timeout_s
        while True:
            idle_until = loop.time() + settings.body_idle_timeout_s
            try:
                async with asyncio.timeout_at(min(idle_until, deadline)):
                    raw = await anext(stream)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                if deadline < idle_until:
                    raise BodyIdle(settings.body_timeout_s, whole=True) from exc
                raise BodyIdle(settings.body_idle_timeout_s) from exc
            sent += len(raw)
            if sent > settings.max_body_bytes:
                raise BodyTooLarge(settings.max_body_bytes, as_sent=True)
            yield raw

    def taken() -> dict[str, str]:
        return {NEXT_OFFSET: str(accepted.next_offset)}

    attributes = {"outrider.engagement_id": str(engagement_id), "outrider.source": source, "outrider.file_id": file_id}
    # The Kafka publish spans (FastStream's middleware) nest under this one, and the analyzer continues the trace.
    with tracer.start_as_current_span("ingest upload", attributes=attributes):
        try:
            async for raw in arrivals():
                for data in expand(inflater.feed(raw) if inflater else (raw,)):
                    for piece in chunker.feed(data):
                        await produce(piece)
            if inflater:
                for data in expand((inflater.finish(),)):
                    for piece in chunker.feed(data):
                        await produce(piece)
            for piece in chunker.finish():
                await produce(piece)
            await settle(0)
        except LineTooLong as exc:
            await settle(0)  # the reply names what Kafka took before the refusal
            metrics.REJECTED.labels("line_too_long").inc()
            raise HTTPException(
                413, f"{exc}; lines before offset {accepted.next_offset} were accepted", headers=taken()
            ) from exc
        except BodyTooLarge as exc:
            await settle(0)
            metrics.REJECTED.labels("body_too_large").inc()
            size = (
                f"is more than {exc.limit} bytes as sent" if exc.as_sent else f"expands to more than {exc.limit} bytes"
            )
            raise HTTPException(
                413,
                f"body {size}; lines before offset {accepted.next_offset} were accepted, send the rest in another"
                " request",
                headers={**taken(), "Connection": "close"},  # or the server reads the rest of the body, for nothing
            ) from exc
        except BodyIdle as exc:
            await settle(0)
            metrics.REJECTED.labels("body_slow" if exc.whole else "body_idle").inc()
            why = f"body not sent within {exc.seconds:g} s" if exc.whole else f"no body bytes for {exc.seconds:g} s"
            raise HTTPException(
                408,
                f"{why}; lines before offset {accepted.next_offset} were accepted, send the rest again",
                headers={**taken(), "Connection": "close"},  # the rest of the body is never read
            ) from exc
        except zlib.error as exc:
            await settle(0)
            metrics.REJECTED.labels(f"bad_{coding}").inc()
            raise HTTPException(400, f"body is not valid {coding}: {exc}", headers=taken()) from exc
        finally:
            # After a 503 the later records may still be in flight: let them finish (a resend dedupes them).
            await asyncio.gather(*(task for _, task in in_flight), return_exceptions=True)
        return accepted
