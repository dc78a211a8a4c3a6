"""Between Kafka and PostgreSQL: chunks queue here, in record order, while they are parsed and one flusher writes.

The subscriber starts parsing each batch in worker threads, hands the unfinished parses to `Flusher.add` and goes
back to Kafka at once, so fetching, parsing, merging the next lot's rows and the write of the previous lot all
overlap. Under load each flush takes everything that queued meanwhile (group commit); at low load a chunk is
written as soon as it is parsed. Offsets are committed only after the flush that holds their chunks, so a crash
loses nothing; chunk ids make anything read twice count once. A failed flush is retried with the same chunks until
it lands, while a full queue stops consumption (backpressure); only a chunk whose data PostgreSQL itself refuses is
taken out of its lot and dead-lettered, so that it cannot hold up its partition for good.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import trace
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_never,
    wait_exponential,
)

from logparse import ChunkStats, StagedRows
from outrider_analyzer import metrics
from outrider_analyzer.findings import Thresholds
from outrider_analyzer.store import Flushed, flush, stage
from outrider_common.db import Database
from outrider_common.events import LogChunk
from outrider_common.topics import DEAD_LETTER_VALUE

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# PostgreSQL's verdict on the data itself, the same on every try: a data exception (22xxx: a value out of range, a
# byte sequence it will not store), an integrity violation (23xxx), a program limit (54xxx: an index row too large).
# A lot that fails so is written in halves until the chunk refused alone is found and dead-lettered. Anything else
# (PostgreSQL or Kafka away, a table missing, a bug) would fail every chunk alike: the lot is retried as it is.
REFUSED = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, asyncpg.ProgramLimitExceededError)

# Reads the record at an offset again (None if the topic no longer holds it): a refused chunk is dead-lettered with
# its value, which the queue does not keep once parsed.
Reread = Callable[[TopicPartition, int], Awaitable[ConsumerRecord | None]]

# The longest a revoke waits for the queue to be written (the whole group waits with it).
DRAIN_SECONDS = 20.0


def header_text(value: bytes | None) -> str:
    """A header value as text, whatever aiokafka handed over: None (a header without a value) or any bytes."""
    return "" if value is None else value.decode("utf-8", "replace")


@dataclass(frozen=True)
class DeadLetter:
    """A record that breaks the `logs.raw` contract, with the reason, for the dead-letter topic."""

    value: bytes
    key: bytes | None
    headers: dict[str, str]
    reason: str
    source: str  # topic/partition/offset it was read from

    @classmethod
    def of(cls, record: ConsumerRecord, headers: dict[str, str], reason: str) -> "DeadLetter":
        source = f"{record.topic}/{record.partition}/{record.offset}"
        return cls(record.value or b"", record.key, headers, reason, source)


@dataclass(frozen=True)
class Handled:
    """One Kafka record done with: parsed (chunk and stats set) or to be dead-lettered (`dead` set)."""

    tp: TopicPartition
    offset: int
    size: int  # bytes of log lines (after expanding the value)
    chunk: LogChunk | None = None
    stats: ChunkStats | None = None
    span: trace.SpanContext | None = None
    dead: DeadLetter | None = None


@dataclass(frozen=True)
class Lot:
    """What one flush writes: the handled records, the parsed chunks among them, their rows staged ahead."""

    batch: list[Handled]
    parsed: list[Handled]
    staged: StagedRows | None


class Flusher:
    """Queue of handled records and the one task that writes them to PostgreSQL and commits their offsets."""

    def __init__(
        self,
        db: Database,
        dead_letter: Callable[[DeadLetter], Awaitable[None]],
        reread: Reread,
        *,
        bucket_seconds: int,
        limits: Thresholds,
        wake_relay: asyncio.Event,
        max_pending_bytes: int,
        retry_max_seconds: float = 30.0,
    ) -> None:
        self._db, self._dead_letter, self._reread = db, dead_letter, reread
        self._bucket_seconds, self._limits = bucket_seconds, limits
        self._wake_relay, self._max_pending_bytes, self._retry_max = wake_relay, max_pending_bytes, retry_max_seconds
        self._pending: list[asyncio.Future[list[Handled]]] = []
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._consumer: AIOKafkaConsumer | None = None

    async def add(self, consumer: AIOKafkaConsumer, handling: asyncio.Future[list[Handled]], size: int) -> None:
        """Queue one batch while it is still being parsed (`size`: bytes of its record values).

        Waits while the queue is full: the database is slow or down, or parsing lags behind fetching.
        """
        await self._room.wait()
        self._consumer = consumer
        self._pending.append(handling)
        self._pending_bytes += size
        if self._pending_bytes >= self._max_pending_bytes:
            self._room.clear()
        self._idle.clear()
        self._wake.set()

    async def drained(self) -> None:
        """Return once everything queued is written (and committed, while a consumer is attached)."""
        await self._idle.wait()

    async def run(self) -> None:
        """Write whatever is queued, one flush at a time, until cancelled.

        The next lot is gathered and staged (`store.stage`) while the previous one's transaction runs, so the
        merge is off the serial path; the transactions and offset commits themselves stay one after the other.
        """
        writing: asyncio.Task[None] | None = None
        try:
            while True:
                if not self._pending:
                    if writing is None:
                        self._idle.set()
                        await self._wake.wait()
                    else:  # nothing to stage: wait for the write in flight or for new work, whichever comes first
                        woken = asyncio.ensure_future(self._wake.wait())
                        await asyncio.wait([woken, writing], return_when=asyncio.FIRST_COMPLETED)
                        woken.cancel()
                        if writing.done():
                            writing.result()
                            writing = None
                    continue
                self._wake.clear()
                batch, self._pending, self._pending_bytes = self._pending, [], 0
                self._room.set()
                lot = await self._prepare(batch)
                if writing is not None:
                    await writing
                writing = asyncio.create_task(self._write(lot))
        finally:
            if writing is not None:
                writing.cancel()

    async def _prepare(self, handling: list[asyncio.Future[list[Handled]]]) -> Lot:
        batch = [h for batch in await asyncio.gather(*handling) for h in batch]  # batches, records in Kafka order
        parsed = [h for h in batch if h.chunk is not None]
        return Lot(batch, parsed, await stage(_pairs(parsed)) if parsed else None)

    async def _write(self, lot: Lot) -> None:
        batch, parsed, staged = lot.batch, lot.parsed, lot.staged
        dead = [h.dead for h in batch if h.dead is not None]
        links = [trace.Link(h.span) for h in batch if h.span is not None]
        # What the lot's transactions did, and the ids of the chunks they wrote or dead-lettered: a retry after a
        # lot was partly written (in halves) leaves those out, so that they are counted once, not as duplicates.
        done: list[Flushed] = []
        settled: set[int] = set()
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=0.5, max=self._retry_max),
            stop=stop_never,  # the chunks are in memory and uncommitted: giving up would be the only way to lose them
            before_sleep=lambda state: self._failed(state, lot.batch),
            reraise=True,
        ):
            # A flush covers chunks of many uploads: it links to each chunk's span rather than having one parent.
            with attempt, tracer.start_as_current_span("analyzer flush", links=links), metrics.FLUSH_SECONDS.time():
                while dead:  # before the offsets move past them; a retry sends only those not sent yet
                    await self._dead_letter(dead[0])
                    dead.pop(0)
                if settled:
                    parsed, staged = [h for h in parsed if id(h) not in settled], None
                if parsed:
                    await self._flush(parsed, staged, done, settled)
        await self._commit(batch)
        self._count(sum(done, Flushed()))

    async def _flush(
        self, parsed: list[Handled], staged: StagedRows | None, done: list[Flushed], settled: set[int]
    ) -> None:
        """Write `parsed` in one transaction or, should PostgreSQL refuse its data (`REFUSED`), in halves.

        The halves are written the same way, down to the chunk refused on its own, which is dead-lettered with the
        reason. Each transaction that lands adds what it did to `done` and its chunks to `settled`, as does each
        chunk dead-lettered, so that a retry of the lot writes only the rest.
        """
        try:
            async with self._db.pool.acquire() as conn, conn.transaction():
                flushed = await flush(
                    conn, _pairs(parsed), bucket_seconds=self._bucket_seconds, limits=self._limits, staged=staged
                )
        except REFUSED as exc:
            if len(parsed) > 1:
                half = len(parsed) // 2
                await self._flush(parsed[:half], None, done, settled)
                await self._flush(parsed[half:], None, done, settled)
                return
            await self._refuse(parsed[0], exc)
            settled.add(id(parsed[0]))
            return
        done.append(flushed)  # committed: the transaction block is left
        settled.update(id(h) for h in parsed)

    async def _refuse(self, handled: Handled, exc: Exception) -> None:
        """Dead-letter a chunk PostgreSQL refuses, with its value read again from Kafka, before its offset moves on."""
        assert handled.chunk is not None
        reason = f"refused by PostgreSQL: {type(exc).__name__}: {exc}"
        headers = handled.chunk.to_headers()
        record = await self._reread(handled.tp, handled.offset)
        if record is None:  # gone from the topic (retention): the reason and the chunk's headers still say what it was
            source = f"{handled.tp.topic}/{handled.tp.partition}/{handled.offset}"
            # No value to replay: the header has `replay` skip it (and count it) rather than send an empty record.
            headers[DEAD_LETTER_VALUE] = "no longer in Kafka (retention removed it before it was dead-lettered)"
            dead = DeadLetter(b"", None, headers, f"{reason} (value no longer in Kafka)", source)
        else:
            dead = DeadLetter.of(record, {k: header_text(v) for k, v in record.headers}, reason)
        log.error("chunk refused by PostgreSQL id=%s source=%s", handled.chunk.chunk_id, dead.source, exc_info=exc)
        await self._dead_letter(dead)

    def _count(self, flushed: Flushed) -> None:
        metrics.FLUSH_ROWS.observe(flushed.rows)
        metrics.CHUNKS.labels("duplicate").inc(flushed.duplicates)
        for chunk, stats, (lines, bad) in flushed.conflicts:
            metrics.CONFLICTS.inc()
            log.warning(
                "chunk id counted before with other content, not counted engagement_id=%s chunk_id=%s lines=%d"
                " bad_lines=%d counted_lines=%d counted_bad_lines=%d", chunk.engagement_id, chunk.chunk_id,
                stats.lines, sum(stats.bad_lines.values()), lines, bad,
            )  # fmt: skip
        for chunk, stats in flushed.counted:
            metrics.CHUNKS.labels("counted").inc()
            for log_type, lines, _, _ in stats.by_type or [("unknown", stats.lines, None, None)]:
                metrics.LINES.labels(log_type).inc(lines)
            metrics.BYTES.inc(stats.size)
            for reason, n in stats.bad_lines.items():
                metrics.BAD_LINES.labels(reason).inc(n)
            for reason, n in stats.skipped.items():
                metrics.SKIPPED_LINES.labels(reason).inc(n)
            if other := stats.skipped.get("other_log_type"):
                log.warning(
                    "lines of another log type than the chunk's not counted engagement_id=%s chunk_id=%s log_type=%s"
                    " lines=%d", chunk.engagement_id, chunk.chunk_id, stats.log_type, other,
                )  # fmt: skip
        for finding in flushed.findings:
            metrics.FINDINGS.labels(finding.rule).inc()
        if flushed.findings:
            self._wake_relay.set()

    @staticmethod
    def _failed(state: RetryCallState, batch: list[Handled]) -> None:
        metrics.FLUSH_FAILURES.inc()
        log.warning(
            "flush failed, retrying in %.1f s records=%d offsets=%s attempt=%d error=%r",
            state.upcoming_sleep,
            len(batch),
            offset_ranges(batch),
            state.attempt_number,
            state.outcome.exception() if state.outcome else None,
        )

    def detach(self) -> None:
        """The consumer is closing: from now on write only (the next owner re-reads what is not committed)."""
        self._consumer = None

    async def _commit(self, batch: Sequence[Handled]) -> None:
        """Commit past every record of `batch` on the partitions this replica still owns.

        Records reach the queue in each partition's order and flushes are serial, so everything below the highest
        offset written has been written too. A partition handed to another replica meanwhile is re-read there from
        its committed offset; the chunk ids make that count nothing twice.
        """
        consumer = self._consumer
        if consumer is None:
            return
        offsets: dict[TopicPartition, int] = {}
        for h in batch:
            offsets[h.tp] = max(offsets.get(h.tp, 0), h.offset + 1)
        owned = consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in owned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # CommitFailedError after a rebalance, IllegalStateError, a broker away
            log.warning("offset commit failed after flush, records will be re-read error=%r", exc)


def offset_ranges(batch: list[Handled]) -> str:
    """The Kafka offsets `batch` covers, per partition: `logs.raw-0:120-183,logs.raw-1:7`."""
    seen: dict[TopicPartition, list[int]] = {}
    for handled in batch:
        seen.setdefault(handled.tp, []).append(handled.offset)
    ranges = (
        f"{tp.topic}-{tp.partition}:{min(o)}" + (f"-{max(o)}" if max(o) > min(o) else "")
        for tp, o in sorted(seen.items())
    )
    return ",".join(ranges)


def _pairs(handled: list[Handled]) -> list[tuple[LogChunk, ChunkStats]]:
    return [(h.chunk, h.stats) for h in handled if h.chunk is not None and h.stats is not None]


class ConsumerLag:
    """The consumer-lag gauge: for each partition this replica owns, its end offset minus the committed offset.

    Refreshed on a timer, not after commits: while PostgreSQL is away nothing commits, and that is when the lag
    must grow for its alert to fire. Partitions handed to another replica lose their series, or a stale value
    would add to the new owner's in a sum over replicas.
    """

    def __init__(self, consumer: Callable[[], AIOKafkaConsumer | None], *, every: float = 5.0) -> None:
        self._consumer, self._every = consumer, every
        self._shown: set[TopicPartition] = set()

    async def run(self) -> None:
        """Refresh the gauge every few seconds until cancelled."""
        while True:
            try:
                async with asyncio.timeout(30.0):  # the coordinator may not answer in a rebalance or outage
                    await self.refresh()
            except Exception as exc:  # Kafka away, the consumer stopping: the next tick tries again
                metrics.LAG_REFRESH_FAILURES.inc()
                log.warning("consumer lag not refreshed error=%r", exc)
            await asyncio.sleep(self._every)

    async def refresh(self) -> None:
        """Set the gauge from the broker's end offsets and the group's committed offsets, once."""
        consumer = self._consumer()
        owned = consumer.assignment() if consumer is not None else set()
        lag: dict[TopicPartition, int] = {}
        if consumer is not None and owned:
            ends = await consumer.end_offsets(list(owned))
            starts: dict[TopicPartition, int] | None = None
            for tp, end in ends.items():
                committed = await consumer.committed(tp)
                if committed is None:  # the group never committed here: everything the partition still holds
                    starts = starts or await consumer.beginning_offsets(list(owned))
                    committed = starts[tp]
                lag[tp] = max(end - committed, 0)
            owned = consumer.assignment()  # a rebalance may have run meanwhile
        self.forget(self._shown - owned)
        for tp, records in lag.items():
            if tp in owned:
                metrics.LAG.labels(str(tp.partition)).set(records)
                self._shown.add(tp)

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Drop the series of partitions this replica no longer owns."""
        for tp in partitions:
            metrics.LAG.remove(str(tp.partition))
            self._shown.discard(tp)


class DrainOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions move to another replica, write and commit what was read from them.

    Bounded, because the whole group waits for this: what is not written by then stays queued and is written later
    (its offsets are then not committed here, and the chunk ids dedupe the new owner's re-read). The bound must stay
    well below the consumer's rebalance timeout, or the group drops this member mid-drain (see app.py).
    """

    def __init__(self, flusher: Flusher, lag: ConsumerLag, timeout: float = DRAIN_SECONDS) -> None:
        self._flusher, self._lag, self._timeout = flusher, lag, timeout

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if not revoked:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._flusher.drained()
        except TimeoutError:
            log.warning("rebalance: queue not written within %.0f s; the new owners re-read it", self._timeout)
        self._lag.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None
