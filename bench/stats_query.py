"""The stats API's query alone: per-key figures of one engagement from its stored minute aggregates.

    uv run python bench/stats_query.py [--size-mb 1000] [--repeat 5]

Writes the generated production_json log's aggregates into PostgreSQL as the analyzer does (`store.flush`), then
times `get_key_stats` (what `GET /v1/engagements/{id}/stats` runs) over the whole engagement, beside the way it
worked before: every stored row fetched and its sketch merged into its key's one at a time in Python
(`logparse.merge_sketches`). Both give the same figures; the bench checks that before it prints. Then the space the
stored figures take in PostgreSQL, per GB of logs.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from analyzer_flush import flush_all, parsed_chunks  # bench/ is on sys.path when this script runs

import logparse
from outrider.devstack import Postgres
from outrider_common.db import migrate
from outrider_tracker.stats.service import get_key_stats

QS = [0.5, 0.95, 0.99]


async def per_row(conn: asyncpg.Connection, engagement: uuid.UUID) -> dict[str, tuple[int, list[float]]]:
    """The query before: every row to Python, sketches merged pairwise per key."""
    merged: dict[str, tuple[int, bytes]] = {}
    for row in await conn.fetch("SELECT key, count, sketch FROM log_stats WHERE engagement_id = $1", engagement):
        count, sketch = merged.get(row["key"], (0, None))
        merged[row["key"]] = (count + row["count"], logparse.merge_sketches(sketch, row["sketch"]) if sketch
                              else row["sketch"])  # fmt: skip
    return {key: (count, logparse.sketch_quantiles(sketch, QS)) for key, (count, sketch) in merged.items()}


# What the analyzer keeps of the logs in PostgreSQL (with their indexes and TOAST): the figure that sizes a database.
STORED_TABLES = ("log_stats", "log_chunks", "log_chunk_types")


async def measure(
    dsn: str, engagement: uuid.UUID, repeat: int
) -> tuple[int, int, list[float], list[float], dict[str, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = int(await conn.fetchval("SELECT count(*) FROM log_stats WHERE engagement_id = $1", engagement))
        await conn.execute("VACUUM ANALYZE")  # sizes as they settle, not with the flushes' dead row versions
        sizes = {t: int(await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", t)) for t in STORED_TABLES}
        now, before = [], []
        for _ in range(repeat):
            start = time.perf_counter()
            keys = (await get_key_stats(conn, engagement_id=engagement, log_type=None, since=None, until=None)).keys
            now.append(time.perf_counter() - start)
            start = time.perf_counter()
            old = await per_row(conn, engagement)
            before.append(time.perf_counter() - start)
        got = {k.key: (k.count, [k.median_ms, k.p95_ms, k.p99_ms]) for k in keys}
        assert got == old, "the two ways disagree"
        return rows, len(keys), now, before, sizes
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1000, help="size of the generated production_json log")
    parser.add_argument("--repeat", type=int, default=5, help="queries timed each way (the median is printed)")
    args = parser.parse_args()

    engagement = uuid.uuid4()
    _, parsed = parsed_chunks(args.size_mb, engagement)

    with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "data") as tmp:
        pg = Postgres(Path(tmp) / "pg")
        pg.start()
        try:
            migrate(pg.dsn)
            asyncio.run(flush_all(pg.dsn, parsed, 125))  # as the analyzer writes
            rows, keys, now, before, sizes = asyncio.run(measure(pg.dsn, engagement, args.repeat))
        finally:
            pg.stop()

    new, old = statistics.median(now), statistics.median(before)
    print(f"| stored | {rows:,} minute rows of {keys:,} keys ({args.size_mb} MB of production_json) |")
    print(f"| get_key_stats: sums in SQL, sketches merged in one Rust call | {1000 * new:.0f} ms |")
    print(f"| before: every row to Python, sketches merged one at a time | {1000 * old:.0f} ms |")
    print(f"| speed-up | {old / new:.1f}x |")
    per_gb = sum(sizes.values()) / 1e6 / (args.size_mb / 1000)
    parts = ", ".join(f"{t} {n / 1e6:.1f}" for t, n in sizes.items())
    print(f"| PostgreSQL space, tables with their indexes | {sum(sizes.values()) / 1e6:.1f} MB ({parts}); "
          f"{per_gb:.1f} MB per GB of logs |")  # fmt: skip


if __name__ == "__main__":
    main()
