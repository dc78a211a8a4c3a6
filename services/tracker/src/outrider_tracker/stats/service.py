"""Queries over the analyzer's `log_stats` table."""

from datetime import datetime
from uuid import UUID

import asyncpg

from outrider_tracker.stats.models import KeyStats

KEY_STATS = """
SELECT log_type, key, sum(count)::bigint AS count, sum(failed)::bigint AS failed,
       sum(duration_sum_ms) AS duration_sum_ms
FROM log_stats
WHERE engagement_id = $1
  AND ($2::text IS NULL OR log_type = $2)
  AND ($3::timestamptz IS NULL OR bucket_start >= $3)
  AND ($4::timestamptz IS NULL OR bucket_start < $4)
GROUP BY log_type, key
ORDER BY count DESC, key
LIMIT $5
"""


async def get_key_stats(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    engagement_id: UUID,
    log_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[KeyStats]:
    """Per-key totals for an engagement over [since, until)."""
    rows = await conn.fetch(KEY_STATS, engagement_id, log_type, since, until, limit)
    return [
        KeyStats(
            log_type=r["log_type"],
            key=r["key"],
            count=r["count"],
            failed=r["failed"],
            perc_failed=100.0 * r["failed"] / r["count"],
            mean_ms=r["duration_sum_ms"] / r["count"],
        )
        for r in rows
    ]
