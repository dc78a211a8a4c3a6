"""SQL of the tables the analyzer owns (`log_stats`, `log_chunks`)."""

from datetime import UTC, datetime

import asyncpg

from logparse import ChunkStats
from outrider_common.events import LogChunk

CLAIM_CHUNK = """
INSERT INTO log_chunks (engagement_id, chunk_id, log_type, lines, bad_lines)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING
RETURNING true
"""

UPSERT_STATS = """
INSERT INTO log_stats (engagement_id, log_type, key, bucket_start, count, failed, duration_sum_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (engagement_id, log_type, key, bucket_start) DO UPDATE SET
    count = log_stats.count + excluded.count,
    failed = log_stats.failed + excluded.failed,
    duration_sum_ms = log_stats.duration_sum_ms + excluded.duration_sum_ms
"""


async def save_chunk(conn: asyncpg.Connection, chunk: LogChunk, stats: ChunkStats) -> bool:
    """Add one chunk's aggregates unless the chunk was counted before; call inside a transaction."""
    log_type = stats.log_type or chunk.log_type or "unknown"
    claimed = await conn.fetchval(
        CLAIM_CHUNK, chunk.engagement_id, chunk.chunk_id, log_type, stats.lines, sum(stats.bad_lines.values())
    )
    if not claimed:
        return False
    await conn.executemany(
        UPSERT_STATS,
        [
            (
                chunk.engagement_id,
                log_type,
                g.key,
                datetime.fromtimestamp(g.bucket_start, UTC),
                g.count,
                g.failed,
                g.duration_sum_ms,
            )
            for g in stats.groups
        ],
    )
    return True
