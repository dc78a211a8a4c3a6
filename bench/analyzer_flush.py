"""The analyzer's PostgreSQL write alone: `store.flush` of parsed production_json chunks into durable PostgreSQL.

    uv run python bench/analyzer_flush.py [--size-mb 200] [--chunks-per-flush 125]

Parses the generated log's ~1 MiB chunks once, then flushes them as the analyzer does (one transaction per flush)
twice: first into an empty `log_stats` (every row new), then the same chunks again under new chunk ids (every row
exists, so numbers add up in SQL and sketches merge) — the two cases a flush meets.
"""

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from analyzer_e2e import chunks  # bench/ is on sys.path when this script runs
from run import ensure_data

import logparse
from outrider.devstack import Postgres
from outrider_analyzer.findings import Thresholds
from outrider_analyzer.store import flush
from outrider_common.db import migrate
from outrider_common.events import LogChunk


async def flush_all(dsn: str, parsed: list[tuple[LogChunk, logparse.ChunkStats]], per: int) -> tuple[float, int]:
    """Seconds and rows for flushing `parsed`, `per` chunks a transaction."""
    conn = await asyncpg.connect(dsn)
    try:
        rows, start = 0, time.perf_counter()
        for i in range(0, len(parsed), per):
            async with conn.transaction():
                rows += (await flush(conn, parsed[i : i + per], bucket_seconds=60, limits=Thresholds())).rows
        return time.perf_counter() - start, rows
    finally:
        await conn.close()


def parsed_chunks(size_mb: int, engagement: uuid.UUID) -> tuple[int, list[tuple[LogChunk, logparse.ChunkStats]]]:
    """The generated production_json log (the file `bench/run.py` uses) cut into ~1 MiB chunks as ingest cuts them,
    each parsed: its size and the (headers, stats) pairs a flush takes."""
    data = ensure_data("production_json", size_mb).read_bytes()
    pieces = chunks(data)
    results = logparse.parse_chunks([(p, "production_json", False) for _, p in pieces])
    stats = [s for s in results if isinstance(s, logparse.ChunkStats)]  # plain values always parse
    log_chunks = [LogChunk(engagement_id=engagement, source="bench", file_id="f", offset=offset, lines=p.count(b"\n"),
                       log_type="production_json") for offset, p in pieces]  # fmt: skip
    return len(data), list(zip(log_chunks, stats, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=200, help="size of the generated production_json log")
    parser.add_argument("--chunks-per-flush", type=int, default=125, help="~1 MiB chunks written per transaction")
    args = parser.parse_args()

    size, parsed = parsed_chunks(args.size_mb, uuid.uuid4())

    with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "data") as tmp:
        pg = Postgres(Path(tmp) / "pg", durable=True)
        pg.start()
        try:
            migrate(pg.dsn)
            new = asyncio.run(flush_all(pg.dsn, parsed, args.chunks_per_flush))
            # The same groups under new chunk ids: every row exists.
            again = [(c.model_copy(update={"offset": c.offset + size}), s) for c, s in parsed]
            existing = asyncio.run(flush_all(pg.dsn, again, args.chunks_per_flush))
        finally:
            pg.stop()

    print(f"| data | {size / 1e6:.0f} MB, {len(parsed)} chunks, {args.chunks_per_flush} a flush |")
    for name, (seconds, rows) in (("rows new", new), ("rows that exist", existing)):
        print(f"| flush, {name} | {seconds:.2f} s for {rows:,} rows ({1000 * seconds / max(rows, 1):.3f} ms a row) |")


if __name__ == "__main__":
    main()
