"""Flushing parsed chunks to PostgreSQL: dedup by chunk id, merge aggregates under row locks, raise findings."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

import logparse
from logparse import ChunkStats
from outrider_analyzer.findings import Baseline, Thresholds, candidate_params, candidates_sql, evaluate, may_spike
from outrider_analyzer.metrics import FLUSH_STEP_SECONDS
from outrider_common import outbox
from outrider_common.events import Finding, LogChunk
from outrider_common.logstats import FIELDS, SUMS, Aggregate, StatsKey
from outrider_common.topics import ANALYSIS_FINDINGS

# One statement per step, whatever the batch size: arrays in, `unnest` on the server.
CLAIM_CHUNKS = """
WITH claimed AS (
    INSERT INTO log_chunks (engagement_id, chunk_id, log_type, lines, bad_lines, start_time, end_time)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[],
                         $7::timestamptz[])
    ON CONFLICT DO NOTHING
    RETURNING engagement_id, chunk_id
), types AS (  -- each claimed chunk's lines and span per log type (several in a mixed chunk)
    INSERT INTO log_chunk_types (engagement_id, chunk_id, log_type, lines, start_time, end_time)
    SELECT t.* FROM unnest($8::uuid[], $9::text[], $10::text[], $11::bigint[], $12::timestamptz[],
                           $13::timestamptz[]) AS t(engagement_id, chunk_id, log_type, lines, start_time, end_time)
    JOIN claimed USING (engagement_id, chunk_id)
    ON CONFLICT DO NOTHING
)
SELECT engagement_id, chunk_id FROM claimed
"""
# The line counts stored for chunk ids claimed before: a duplicate that differs was not the same chunk.
COUNTED_BEFORE = """
SELECT engagement_id, chunk_id, lines, bad_lines FROM log_chunks
WHERE (engagement_id, chunk_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
"""
# The merged groups of a flush are COPYed into a session-local table (logparse writes them in the binary COPY
# format, without a Python object per row) and go into `log_stats` from there: new rows whole, and for rows that
# exist the numbers add up on the server, so only the sketches make a round trip.
STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS analyzer_stage (
    n integer PRIMARY KEY, engagement_id uuid, log_type text, key text, bucket bigint,
    bucket_start timestamptz GENERATED ALWAYS AS (to_timestamp(bucket)) STORED, count bigint, failed bigint,
    {", ".join(f"{s} double precision" for s in SUMS)}, duration_min_ms double precision,
    duration_max_ms double precision, sketch bytea
) ON COMMIT DELETE ROWS
"""
ROW = "engagement_id, log_type, key, bucket_start"
# The statements on staged rows take them in row-number order: `stage_rows` numbers the rows in one order that
# every replica shares (engagement, log type, key bytes, bucket), so concurrent replicas take their row locks in the
# same order (no deadlock), and PostgreSQL sorts one integer column instead of four.
# New rows are written whole; their staged rows are dropped, which leaves those whose row already exists. Returns
# the new rows that could raise a finding.
INSERT_NEW = f"""
WITH new AS (
    INSERT INTO log_stats ({ROW}, {", ".join(FIELDS)})
    SELECT {ROW}, {", ".join(FIELDS)} FROM analyzer_stage ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING *
), inserted AS (
    DELETE FROM analyzer_stage g USING new
    WHERE (g.engagement_id, g.log_type, g.key, g.bucket_start)
        = (new.engagement_id, new.log_type, new.key, new.bucket_start)
)
SELECT * FROM new WHERE {candidates_sql(1)}
"""
# Rows that existed: locked in row-number order, their stored sketch read for merging. Each is looked up by primary
# key (LATERAL): as a join, the planner hashed a scan of the whole of log_stats every flush, a cost that grows with
# the table.
LOCK_EXISTING = f"""
SELECT g.n, s.stored
FROM (SELECT n, {ROW} FROM analyzer_stage ORDER BY n) g
CROSS JOIN LATERAL (
    SELECT sketch AS stored FROM log_stats s
    WHERE (s.engagement_id, s.log_type, s.key, s.bucket_start) = (g.engagement_id, g.log_type, g.key, g.bucket_start)
    FOR UPDATE
) s
"""
# Every staged row left has a locked row to add to (the conflict arbiter finds it by primary key); the sketches
# merged meanwhile come in as parameters.
ADD_TO_EXISTING = f"""
WITH updated AS (
    INSERT INTO log_stats ({ROW}, {", ".join(FIELDS)})
    SELECT {ROW}, {", ".join(FIELDS[:-1])}, m.sketch
    FROM analyzer_stage JOIN unnest($1::integer[], $2::bytea[]) AS m(n, sketch) USING (n) ORDER BY n
    ON CONFLICT ({ROW}) DO UPDATE SET
        {", ".join(f"{n} = log_stats.{n} + excluded.{n}" for n in ("count", "failed", *SUMS))},
        duration_min_ms = least(log_stats.duration_min_ms, excluded.duration_min_ms),
        duration_max_ms = greatest(log_stats.duration_max_ms, excluded.duration_max_ms),
        sketch = excluded.sketch
    RETURNING *
)
SELECT * FROM updated WHERE {candidates_sql(3)}
"""
# Each window's key over the minutes before it (rows this transaction wrote included), by primary key range.
BASELINES = """
SELECT w.i, b.count, b.failed
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY
    AS w(engagement_id, log_type, key, window_start, i)
CROSS JOIN LATERAL (
    SELECT coalesce(sum(count), 0)::bigint AS count, coalesce(sum(failed), 0)::bigint AS failed FROM log_stats s
    WHERE (s.engagement_id, s.log_type, s.key) = (w.engagement_id, w.log_type, w.key)
        AND s.bucket_start >= w.window_start - make_interval(mins => $5) AND s.bucket_start < w.window_start
) b
"""
RECORD_FINDINGS = """
INSERT INTO findings (engagement_id, rule, log_type, key, window_start, finding_id, figures)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::uuid[], $7::jsonb[])
ON CONFLICT DO NOTHING
RETURNING finding_id
"""


# The flush's Rust calls (merge and encode a lot, merge stored sketches) get threads of their own: in asyncio's
# default executor they would queue behind the parse jobs of every batch fetched meanwhile, on the serial path.
_RUST = ThreadPoolExecutor(max_workers=2, thread_name_prefix="analyzer-flush")


@dataclass
class Flushed:
    """What one flush did."""

    counted: list[tuple[LogChunk, ChunkStats]] = field(default_factory=list)
    duplicates: int = 0
    rows: int = 0
    findings: list[Finding] = field(default_factory=list)
    # Duplicates whose content differs from the chunk counted under their id: (chunk, its stats, what was counted).
    conflicts: list[tuple[LogChunk, ChunkStats, tuple[int, int]]] = field(default_factory=list)

    def __add__(self, other: "Flushed") -> "Flushed":
        """Two flushes' results as one (a lot written in parts)."""
        return Flushed(
            self.counted + other.counted, self.duplicates + other.duplicates, self.rows + other.rows,
            self.findings + other.findings, self.conflicts + other.conflicts,
        )  # fmt: skip


step = FLUSH_STEP_SECONDS.labels


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to one list per column (the `unnest` parameters)."""
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _log_type(chunk: LogChunk, stats: ChunkStats) -> str:
    return stats.log_type or chunk.log_type or "unknown"


def _log_types(chunk: LogChunk, stats: ChunkStats) -> list[tuple[str, int, float | None, float | None]]:
    """Each log type a chunk's lines are counted under, with its lines and span: one, or several in a mixed chunk
    (a Helm pod's stdout)."""
    return stats.by_type or [(_log_type(chunk, stats), stats.lines, stats.start_time, stats.end_time)]


async def stage(parsed: list[tuple[LogChunk, ChunkStats]]) -> logparse.StagedRows:
    """`parsed` merged into rows (one per engagement, log type, key and time bucket) and encoded for the COPY.

    Chunks of one engagement and log type are added up in Rust, off the event loop (a chunk of several log types
    adds each type's groups to that type's rows). It needs no database, so the flusher stages a lot while the
    previous lot's transaction runs.
    """
    by_stream: dict[tuple[UUID, str], list[ChunkStats]] = {}
    for chunk, stats in parsed:
        for log_type, *_ in _log_types(chunk, stats):
            by_stream.setdefault((chunk.engagement_id, log_type), []).append(stats)
    streams = [(engagement_id.bytes, log_type, chunks) for (engagement_id, log_type), chunks in by_stream.items()]
    loop = asyncio.get_running_loop()
    with step("merge").time():  # the loop keeps fetching meanwhile
        return await loop.run_in_executor(_RUST, logparse.stage_rows, streams)


async def flush(
    conn: asyncpg.Connection,
    parsed: list[tuple[LogChunk, ChunkStats]],
    *,
    bucket_seconds: int,
    limits: Thresholds,
    staged: logparse.StagedRows | None = None,
) -> Flushed:
    """Count every chunk not counted before, in one transaction the caller owns.

    `staged`: `stage(parsed)`, done ahead; used when every chunk is new, staged again without the others if not.
    """
    result = Flushed()
    rows = [
        (chunk.engagement_id, chunk.chunk_id, _log_type(chunk, stats), stats.lines, sum(stats.bad_lines.values()),
         _time(stats.start_time), _time(stats.end_time))
        for chunk, stats in parsed
    ]  # fmt: skip
    types = [
        (chunk.engagement_id, chunk.chunk_id, log_type, lines, _time(start), _time(end))
        for chunk, stats in parsed
        for log_type, lines, start, end in _log_types(chunk, stats)
    ]
    with step("claim").time():
        claimed = {
            (r["engagement_id"], r["chunk_id"])
            for r in await conn.fetch(CLAIM_CHUNKS, *_columns(rows, 7), *_columns(types, 6))
        }
    duplicates = []
    for chunk, stats in parsed:
        if (chunk.engagement_id, chunk.chunk_id) not in claimed:
            result.duplicates += 1  # counted before, or twice in this batch
            duplicates.append((chunk, stats))
            continue
        claimed.discard((chunk.engagement_id, chunk.chunk_id))
        result.counted.append((chunk, stats))
    if duplicates:
        result.conflicts = await _conflicts(conn, duplicates)
    if staged is None or result.duplicates:
        staged = await stage(result.counted)
    if not staged:
        return result

    with step("copy").time():
        await conn.execute(STAGE)
        # A memoryview: asyncpg would take bytes for a file path.
        copy = memoryview(staged.copy)
        await conn.copy_to_table("analyzer_stage", source=copy, columns=logparse.STAGE_COLUMNS, format="binary")
    candidates = candidate_params(limits)
    with step("insert").time():
        judged = await conn.fetch(INSERT_NEW, *candidates)
    with step("existing").time():
        existing = await conn.fetch(LOCK_EXISTING)
        if existing:
            pairs = [[r["stored"], staged.sketch(r["n"])] for r in existing]
            merged = await asyncio.get_running_loop().run_in_executor(_RUST, logparse.merge_sketch_groups, pairs)
            judged += await conn.fetch(ADD_TO_EXISTING, [r["n"] for r in existing], merged, *candidates)
    result.rows = len(staged)
    with step("findings").time():
        result.findings = await _findings(conn, judged, bucket_seconds=bucket_seconds, limits=limits)
    return result


async def _conflicts(
    conn: asyncpg.Connection, duplicates: list[tuple[LogChunk, ChunkStats]]
) -> list[tuple[LogChunk, ChunkStats, tuple[int, int]]]:
    """The duplicates whose lines differ from what was counted under their chunk id (lines, bad lines).

    A chunk id names a byte range's start; the same start with other content is a client that sent a file's range
    again longer (or changed): its lines are not counted, and that must not go unseen.
    """
    ids = _columns([(chunk.engagement_id, chunk.chunk_id) for chunk, _ in duplicates], 2)
    stored = {(r["engagement_id"], r["chunk_id"]): (r["lines"], r["bad_lines"]) for r in
              await conn.fetch(COUNTED_BEFORE, *ids)}  # fmt: skip
    return [
        (chunk, stats, before)
        for chunk, stats in duplicates
        if (before := stored.get((chunk.engagement_id, chunk.chunk_id))) is not None
        and before != (stats.lines, sum(stats.bad_lines.values()))
    ]


async def _baselines(conn: asyncpg.Connection, windows: list[StatsKey], limits: Thresholds) -> dict[StatsKey, Baseline]:
    """The baseline of each window whose failure share is over the line (`evaluate`'s error spike)."""
    if not windows or not limits.error_baseline_minutes:
        return {}
    columns = _columns([(w.engagement_id, w.log_type, w.key, w.bucket_start) for w in windows], 4)
    found = await conn.fetch(BASELINES, *columns, limits.error_baseline_minutes)
    return {windows[r["i"] - 1]: Baseline(r["count"], r["failed"]) for r in found}


async def _findings(
    conn: asyncpg.Connection, judged: list[asyncpg.Record], *, bucket_seconds: int, limits: Thresholds
) -> list[Finding]:
    """Judge the written rows that could raise one; record and queue the findings not raised before."""
    windows = [
        (StatsKey(row["engagement_id"], row["log_type"], row["key"], row["bucket_start"]), Aggregate.from_record(row))
        for row in judged
    ]
    baselines = await _baselines(conn, [w for w, agg in windows if may_spike(agg, limits)], limits)
    tripped = [
        (where, rule, uuid4()) for where, agg in windows for rule in evaluate(where, agg, limits, baselines.get(where))
    ]
    if not tripped:
        return []
    finding_rows = [
        (w.engagement_id, t.rule, w.log_type, w.key, w.bucket_start, finding_id, json.dumps(t.figures))
        for w, t, finding_id in tripped
    ]
    # One finding per rule, key and window, however many chunks later cross the line again.
    new = {r["finding_id"] for r in await conn.fetch(RECORD_FINDINGS, *_columns(finding_rows, 7))}
    findings = [
        Finding(
            finding_id=finding_id, engagement_id=w.engagement_id, rule=t.rule, log_type=w.log_type, key=w.key,
            window_start=w.bucket_start, window_end=w.bucket_start + timedelta(seconds=bucket_seconds),
            summary=t.summary, figures=t.figures,
        )
        for w, t, finding_id in tripped
        if finding_id in new
    ]  # fmt: skip
    await outbox.add_many(
        conn, producer="analyzer", topic=ANALYSIS_FINDINGS, events=[(str(f.engagement_id), f) for f in findings]
    )
    return findings
