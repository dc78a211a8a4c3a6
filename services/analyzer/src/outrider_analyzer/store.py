"""Flushing parsed chunks to PostgreSQL: dedup by chunk id, merge aggregates under row locks, raise findings."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg

from logparse import ChunkStats
from outrider_analyzer.findings import Thresholds, evaluate
from outrider_common import outbox
from outrider_common.events import Finding, LogChunk
from outrider_common.logstats import FIELDS, Aggregate, StatsKey
from outrider_common.topics import ANALYSIS_FINDINGS

CLAIM_CHUNK = """
INSERT INTO log_chunks (engagement_id, chunk_id, log_type, lines, bad_lines, start_time, end_time)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
RETURNING true
"""
# Rows are created empty first, in key order, so concurrent replicas lock them in the same order (no deadlock)
# and a replica never overwrites a row another one inserted a moment before.
PLACEHOLDER = f"""
INSERT INTO log_stats (engagement_id, log_type, key, bucket_start, {", ".join(FIELDS)})
VALUES ($1, $2, $3, $4, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL)
ON CONFLICT DO NOTHING
"""
LOCK_ROWS = f"""
SELECT engagement_id, log_type, key, bucket_start, {", ".join(FIELDS)}
FROM log_stats
WHERE (engagement_id, log_type, key, bucket_start) IN (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]))
ORDER BY engagement_id, log_type, key, bucket_start
FOR UPDATE
"""
UPDATE = f"""
UPDATE log_stats SET {", ".join(f"{n} = ${i + 5}" for i, n in enumerate(FIELDS))}
WHERE engagement_id = $1 AND log_type = $2 AND key = $3 AND bucket_start = $4
"""
RECORD_FINDING = """
INSERT INTO findings (engagement_id, rule, log_type, key, window_start, finding_id, figures)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
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
    merged: dict[StatsKey, Aggregate] = {}
    for chunk, stats in parsed:
        log_type = stats.log_type or chunk.log_type or "unknown"
        claimed = await conn.fetchval(
            CLAIM_CHUNK, chunk.engagement_id, chunk.chunk_id, log_type, stats.lines, sum(stats.bad_lines.values()),
            _time(stats.start_time), _time(stats.end_time),
        )  # fmt: skip
        if not claimed:
            result.duplicates += 1
            continue
        result.counted.append((chunk, stats))
        for group in stats.groups:
            where = StatsKey(chunk.engagement_id, log_type, group.key, datetime.fromtimestamp(group.bucket_start, UTC))
            merged.setdefault(where, Aggregate()).merge(Aggregate.from_group(group))
    if not merged:
        return result

    keys = sorted(merged)
    pks = [(k.engagement_id, k.log_type, k.key, k.bucket_start) for k in keys]
    await conn.executemany(PLACEHOLDER, pks)
    rows = await conn.fetch(LOCK_ROWS, *map(list, zip(*pks, strict=True)))
    totals: dict[StatsKey, Aggregate] = {}
    for row in rows:
        where = StatsKey(row["engagement_id"], row["log_type"], row["key"], row["bucket_start"])
        total = Aggregate.from_record(row)
        total.merge(merged[where])
        totals[where] = total
    await conn.executemany(UPDATE, [(*pk, *totals[k].values()) for k, pk in zip(keys, pks, strict=True)])
    result.rows = len(keys)

    for where, total in totals.items():
        for tripped in evaluate(where, total, limits):
            finding = Finding(
                finding_id=uuid4(), engagement_id=where.engagement_id, rule=tripped.rule,
                log_type=where.log_type, key=where.key, window_start=where.bucket_start,
                window_end=where.bucket_start + timedelta(seconds=bucket_seconds), summary=tripped.summary,
                figures=tripped.figures,
            )  # fmt: skip
            new = await conn.fetchval(
                RECORD_FINDING, where.engagement_id, tripped.rule, where.log_type, where.key, where.bucket_start,
                finding.finding_id, json.dumps(tripped.figures),
            )  # fmt: skip
            if new:  # one finding per rule, key and window, however many chunks later cross the line again
                await outbox.add(
                    conn, producer="analyzer", topic=ANALYSIS_FINDINGS, key=str(where.engagement_id), event=finding
                )
                result.findings.append(finding)
    return result
