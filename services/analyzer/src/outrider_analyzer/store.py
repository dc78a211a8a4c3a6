"""Flushing parsed chunks to PostgreSQL: dedup by chunk id, merge aggregates under row locks, raise findings."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

import logparse
from logparse import ChunkStats
from outrider_analyzer.findings import Thresholds, evaluate
from outrider_common import outbox
from outrider_common.events import Finding, LogChunk
from outrider_common.logstats import FIELDS, SUMS, Aggregate, StatsKey
from outrider_common.topics import ANALYSIS_FINDINGS

# One statement per step, whatever the batch size: arrays in, `unnest` on the server.
CLAIM_CHUNKS = """
INSERT INTO log_chunks (engagement_id, chunk_id, log_type, lines, bad_lines, start_time, end_time)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[],
                     $7::timestamptz[])
ON CONFLICT DO NOTHING
RETURNING engagement_id, chunk_id
"""
PK = "$1::uuid[], $2::text[], $3::text[], $4::timestamptz[]"
# Rows are created empty first, in key order, so concurrent replicas lock them in the same order (no deadlock)
# and a replica never overwrites a row another one inserted a moment before.
PLACEHOLDERS = f"""
INSERT INTO log_stats (engagement_id, log_type, key, bucket_start, {", ".join(FIELDS)})
SELECT k.engagement_id, k.log_type, k.key, k.bucket_start, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL
FROM unnest({PK}) WITH ORDINALITY AS k(engagement_id, log_type, key, bucket_start, n)
ORDER BY n
ON CONFLICT DO NOTHING
"""
LOCK_ROWS = f"""
SELECT engagement_id, log_type, key, bucket_start, {", ".join(FIELDS)}
FROM log_stats
WHERE (engagement_id, log_type, key, bucket_start) IN (SELECT * FROM unnest({PK}))
ORDER BY engagement_id, log_type, key, bucket_start
FOR UPDATE
"""
FIELD_TYPES = ("bigint", "bigint", *["double precision"] * len(SUMS), "double precision", "double precision", "bytea")
UPDATE = f"""
UPDATE log_stats AS s SET {", ".join(f"{n} = u.{n}" for n in FIELDS)}
FROM unnest({PK}, {", ".join(f"${i + 5}::{t}[]" for i, t in enumerate(FIELD_TYPES))})
    AS u(engagement_id, log_type, key, bucket_start, {", ".join(FIELDS)})
WHERE (s.engagement_id, s.log_type, s.key, s.bucket_start) = (u.engagement_id, u.log_type, u.key, u.bucket_start)
"""
RECORD_FINDINGS = """
INSERT INTO findings (engagement_id, rule, log_type, key, window_start, finding_id, figures)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::uuid[], $7::jsonb[])
ON CONFLICT DO NOTHING
RETURNING finding_id
"""


@dataclass
class Flushed:
    """What one flush did."""

    counted: list[tuple[LogChunk, ChunkStats]] = field(default_factory=list)
    duplicates: int = 0
    rows: int = 0
    findings: list[Finding] = field(default_factory=list)


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to one list per column (the `unnest` parameters)."""
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


async def flush(
    conn: asyncpg.Connection,
    parsed: list[tuple[LogChunk, ChunkStats]],
    *,
    bucket_seconds: int,
    limits: Thresholds,
) -> Flushed:
    """Count every chunk not counted before, in one transaction the caller owns."""
    result = Flushed()
    rows = [
        (chunk.engagement_id, chunk.chunk_id, stats.log_type or chunk.log_type or "unknown", stats.lines,
         sum(stats.bad_lines.values()), _time(stats.start_time), _time(stats.end_time))
        for chunk, stats in parsed
    ]  # fmt: skip
    claimed = {(r["engagement_id"], r["chunk_id"]) for r in await conn.fetch(CLAIM_CHUNKS, *_columns(rows, 7))}
    # Chunks of one engagement and log type are added up in Rust; their keys become rows.
    by_stream: dict[tuple[UUID, str], list[ChunkStats]] = {}
    for (chunk, stats), row in zip(parsed, rows, strict=True):
        if (chunk.engagement_id, chunk.chunk_id) not in claimed:
            result.duplicates += 1  # counted before, or twice in this batch
            continue
        claimed.discard((chunk.engagement_id, chunk.chunk_id))
        result.counted.append((chunk, stats))
        by_stream.setdefault((chunk.engagement_id, row[2]), []).append(stats)
    merged: dict[StatsKey, Aggregate] = {}
    for (engagement_id, log_type), chunk_stats in by_stream.items():
        for group in logparse.merge_groups(chunk_stats):
            where = StatsKey(engagement_id, log_type, group.key, datetime.fromtimestamp(group.bucket_start, UTC))
            merged[where] = Aggregate.from_group(group)
    if not merged:
        return result

    keys = sorted(merged)
    pk_columns = _columns([(k.engagement_id, k.log_type, k.key, k.bucket_start) for k in keys], 4)
    await conn.execute(PLACEHOLDERS, *pk_columns)
    totals: dict[StatsKey, Aggregate] = {}
    for row in await conn.fetch(LOCK_ROWS, *pk_columns):
        where = StatsKey(row["engagement_id"], row["log_type"], row["key"], row["bucket_start"])
        total = Aggregate.from_record(row)
        total.merge(merged[where])
        totals[where] = total
    await conn.execute(UPDATE, *pk_columns, *_columns([totals[k].values() for k in keys], len(FIELDS)))
    result.rows = len(keys)

    candidates = [
        Finding(
            finding_id=uuid4(), engagement_id=where.engagement_id, rule=tripped.rule, log_type=where.log_type,
            key=where.key, window_start=where.bucket_start,
            window_end=where.bucket_start + timedelta(seconds=bucket_seconds), summary=tripped.summary,
            figures=tripped.figures,
        )
        for where, total in totals.items()
        for tripped in evaluate(where, total, limits)
    ]  # fmt: skip
    if candidates:
        finding_rows = [
            (f.engagement_id, f.rule, f.log_type, f.key, f.window_start, f.finding_id, json.dumps(f.figures))
            for f in candidates
        ]
        # One finding per rule, key and window, however many chunks later cross the line again.
        new = {r["finding_id"] for r in await conn.fetch(RECORD_FINDINGS, *_columns(finding_rows, 7))}
        result.findings = [f for f in candidates if f.finding_id in new]
        await outbox.add_many(
            conn, producer="analyzer", topic=ANALYSIS_FINDINGS,
            events=[(str(f.engagement_id), f) for f in result.findings],
        )  # fmt: skip
    return result
