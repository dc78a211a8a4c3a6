"""Queries over `log_stats` (merge the stored per-minute aggregates into per-key figures) and `findings`."""

import asyncio
import json
import math
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from uuid import UUID

import asyncpg

import logparse
from outrider_common.logstats import BUCKET_SECONDS, FIELDS, SUMS, Aggregate
from outrider_tracker.stats.models import FindingRead, KeyStats

# The bucket the analyzer counts lines without a time in (their epoch 0). A range with a bound leaves it out: those
# lines happened at some unknown time, not in 1970, so they belong to no range but the whole.
UNTIMED = "'epoch'::timestamptz"
# Counts and sums add up in PostgreSQL; the sketches come back as one array per key and merge in one Rust call.
KEYS = f"""
SELECT log_type, key, sum(count)::bigint AS count, sum(failed)::bigint AS failed,
       {", ".join(f"sum({name}) AS {name}" for name in SUMS)},
       min(duration_min_ms) AS duration_min_ms, max(duration_max_ms) AS duration_max_ms,
       array_agg(sketch) AS sketches
FROM log_stats
WHERE engagement_id = $1
  AND ($2::text IS NULL OR log_type = $2)
  AND ($3::timestamptz IS NULL OR bucket_start >= $3)
  AND ($4::timestamptz IS NULL OR bucket_start < $4)
  AND (($3::timestamptz IS NULL AND $4::timestamptz IS NULL) OR bucket_start <> {UNTIMED})
GROUP BY log_type, key
HAVING sum(count) > 0
"""
UNTIMED_COUNT = f"""
SELECT coalesce(sum(count), 0)::bigint FROM log_stats
WHERE engagement_id = $1 AND ($2::text IS NULL OR log_type = $2) AND bucket_start = {UNTIMED}
"""
# Each log type's span, from the first to the last of its lines (a mixed chunk holds lines of several).
SPAN = """
SELECT log_type, min(start_time) AS first, max(end_time) AS last
FROM log_chunk_types
WHERE engagement_id = $1 AND ($2::text IS NULL OR log_type = $2)
  AND ($3::timestamptz IS NULL OR end_time >= $3) AND ($4::timestamptz IS NULL OR start_time < $4)
GROUP BY log_type
"""


# Stored sketches held at once while a query merges them (~200 bytes each): an engagement's whole history is a row
# per key and minute, millions for a month of a busy one, which a single fetch would hold all at once.
SKETCHES_AT_ONCE = 100_000

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BUCKET = timedelta(seconds=BUCKET_SECONDS)  # how the analyzer counts; a range is widened to whole buckets


def _edge(at: datetime, *, up: bool) -> datetime:
    """The start of the bucket `at` falls in, or with `up` of the next one unless `at` is a start itself."""
    into = (at - EPOCH) % BUCKET
    return at - into + (BUCKET if up and into else timedelta(0))


def whole_minutes(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """[since, until) widened to whole buckets (minutes), in UTC: `since` down and `until` up to a bucket's start."""
    start = _edge(since.astimezone(UTC), up=False) if since else None
    end = _edge(until.astimezone(UTC), up=True) if until else None
    return start, end


def key_stats(log_type: str, key: str, agg: Aggregate, span_seconds: float) -> KeyStats:
    """The `outrider stats` columns of one merged aggregate."""
    n = agg.count
    mean = agg.duration_sum_ms / n
    p50, p95, p99 = agg.quantiles([0.5, 0.95, 0.99])
    return KeyStats(
        log_type=log_type, key=key, count=n, rps=n / span_seconds if span_seconds > 0 else 0.0,
        p99_ms=p99, p95_ms=p95, median_ms=p50, max_ms=agg.duration_max_ms or 0.0, min_ms=agg.duration_min_ms or 0.0,
        stddev_ms=math.sqrt(max(agg.duration_sumsq_ms2 / n - mean * mean, 0.0)), score=n * p99,
        failed=agg.failed, perc_failed=100.0 * agg.failed / n, mean_ms=mean, db_avg_ms=agg.db_sum_ms / n,
        gitaly_avg_ms=agg.gitaly_sum_ms / n, redis_avg_ms=agg.redis_sum_ms / n, cpu_avg_ms=agg.cpu_sum_ms / n,
        queue_avg_ms=agg.queue_sum_ms / n,
    )  # fmt: skip


class Figures(NamedTuple):
    keys: list[KeyStats]
    """Per key, sorted by score."""
    totals: list[KeyStats]
    """One `TOTAL` row per log type: every key's requests together, as `outrider stats` prints under its table."""
    span_seconds: float
    """The time span of the logs the figures cover (each log type's rate is over that type's own span)."""
    since: datetime | None
    """Start of the range counted: the one asked for, down to a minute's start."""
    until: datetime | None
    """End of the range counted (exclusive): the one asked for, up to a minute's start."""
    untimed: int
    """Requests logged without a time: counted only in a range with neither bound."""


def add_up(aggs: list[Aggregate], sketch: bytes | None) -> Aggregate:
    """One aggregate of several (their sketches merged beforehand into `sketch`)."""
    mins = [a.duration_min_ms for a in aggs if a.duration_min_ms is not None]
    maxes = [a.duration_max_ms for a in aggs if a.duration_max_ms is not None]
    return Aggregate(
        count=sum(a.count for a in aggs), failed=sum(a.failed for a in aggs),
        **{name: math.fsum(getattr(a, name) for a in aggs) for name in SUMS},
        duration_min_ms=min(mins, default=None), duration_max_ms=max(maxes, default=None), sketch=sketch,
    )  # fmt: skip


async def get_key_stats(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    engagement_id: UUID,
    log_type: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Figures:
    """Per-key figures for an engagement over [since, until) widened to whole minutes, sorted by score, each log
    type's totals, the span they cover and the range counted."""
    since, until = whole_minutes(since, until)
    merged = await _merged_keys(conn, engagement_id, log_type, since, until)
    bounds = [b for b in await conn.fetch(SPAN, engagement_id, log_type, since, until) if b["first"] and b["last"]]
    spans = {b["log_type"]: _span(b["first"], b["last"], since, until) for b in bounds}
    span = _span(min(b["first"] for b in bounds), max(b["last"] for b in bounds), since, until) if bounds else 0.0
    stats = [key_stats(lt, key, agg, spans.get(lt, 0.0)) for (lt, key), agg in merged.items()]
    stats.sort(key=lambda k: (-k.score, k.key))
    by_type: dict[str, list[Aggregate]] = {}
    for (lt, _), agg in merged.items():
        by_type.setdefault(lt, []).append(agg)
    types = sorted(by_type)
    sketches = await asyncio.to_thread(logparse.merge_sketch_groups, [[a.sketch for a in by_type[lt]] for lt in types])
    totals = [
        key_stats(lt, "TOTAL", add_up(by_type[lt], sk), spans.get(lt, 0.0))
        for lt, sk in zip(types, sketches, strict=True)
    ]
    untimed = await conn.fetchval(UNTIMED_COUNT, engagement_id, log_type)
    return Figures(stats, totals, span, since, until, untimed)


async def _merged_keys(
    conn: asyncpg.Connection | asyncpg.Pool, *args: object, sketches_at_once: int = SKETCHES_AT_ONCE
) -> dict[tuple[str, str], Aggregate]:
    """Each key's aggregate over the range (`KEYS`), its stored sketches read and merged a few keys at a time."""
    merged: dict[tuple[str, str], Aggregate] = {}
    batch: list[asyncpg.Record] = []

    async def merge() -> None:
        sketches = await asyncio.to_thread(logparse.merge_sketch_groups, [row["sketches"] for row in batch])
        for row, sketch in zip(batch, sketches, strict=True):
            merged[row["log_type"], row["key"]] = Aggregate(**{n: row[n] for n in FIELDS if n != "sketch"},
                                                            sketch=sketch)  # fmt: skip
        batch.clear()

    async with _connection(conn) as c, c.transaction():  # a cursor lives in a transaction
        held = 0
        async for row in c.cursor(KEYS, *args, prefetch=16):
            batch.append(row)
            held += len(row["sketches"])
            if held >= sketches_at_once:
                await merge()
                held = 0
    if batch:
        await merge()
    return merged


def _connection(conn: asyncpg.Connection | asyncpg.Pool) -> AbstractAsyncContextManager[asyncpg.Connection]:
    return conn.acquire() if isinstance(conn, asyncpg.Pool) else nullcontext(conn)


def _span(first: datetime, last: datetime, since: datetime | None, until: datetime | None) -> float:
    """Seconds from the first line to the last within [since, until)."""
    first = max(first, since) if since else first
    last = min(last, until) if until else last
    return max((last - first).total_seconds(), 0.0)


async def get_findings(
    pool: asyncpg.Pool,
    *,
    engagement_id: UUID,
    rule: str | None,
    log_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[int, list[FindingRead]]:
    """How many findings match, and one page of them, newest window first."""
    where = (
        "engagement_id = $1 AND ($2::text IS NULL OR rule = $2) AND ($3::text IS NULL OR log_type = $3)"
        " AND ($4::timestamptz IS NULL OR window_start >= $4) AND ($5::timestamptz IS NULL OR window_start < $5)"
    )
    params = (engagement_id, rule, log_type, since, until)
    total = await pool.fetchval(f"SELECT count(*) FROM findings WHERE {where}", *params)
    rows = await pool.fetch(
        "SELECT finding_id, rule, log_type, key, window_start, figures, created_at AS raised_at FROM findings"
        f" WHERE {where} ORDER BY window_start DESC, rule, log_type, key LIMIT $6 OFFSET $7",
        *params,
        limit,
        offset,
    )
    return total, [FindingRead(**{**dict(r), "figures": json.loads(r["figures"])}) for r in rows]
