"""The analyzer's flush against real PostgreSQL: adding to stored rows gives what one write of everything gives."""

import uuid
from pathlib import Path

import asyncpg
import pytest

import logparse
from outrider_analyzer.findings import Thresholds
from outrider_analyzer.store import flush
from outrider_common.db import migrate
from outrider_common.events import LogChunk
from outrider_common.logstats import FIELDS

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
QUANTILES = [0.5, 0.95, 0.99]


def chunks(engagement: uuid.UUID, lines: list[bytes], pieces: int) -> list[tuple[LogChunk, logparse.ChunkStats]]:
    """`lines` cut into `pieces` chunks of interleaved lines, so that every key and minute is in several."""
    out = []
    for i in range(pieces):
        data = b"".join(lines[i::pieces])
        chunk = LogChunk(engagement_id=engagement, source="t", file_id="f", offset=i, lines=data.count(b"\n"))
        out.append((chunk, logparse.parse_chunk(data, "production_json")))
    return out


async def stored(conn: asyncpg.Connection, engagement: uuid.UUID) -> dict[tuple[str, object], list[float]]:
    """Each row's numbers, and the sketch's quantiles in place of its bytes."""
    rows = await conn.fetch("SELECT * FROM log_stats WHERE engagement_id = $1", engagement)
    return {
        (r["key"], r["bucket_start"]): [
            *(r[n] for n in FIELDS[:-1]),
            *logparse.sketch_quantiles(r["sketch"], QUANTILES),
        ]
        for r in rows
    }


async def test_flushes_that_add_to_stored_rows_equal_one_flush_of_everything(database_dsn: str) -> None:
    migrate(database_dsn)
    lines = (FIXTURES / "production_json.log").read_bytes().splitlines(keepends=True)
    at_once, piecemeal = uuid.uuid4(), uuid.uuid4()
    limits = Thresholds()
    conn = await asyncpg.connect(database_dsn)
    try:
        async with conn.transaction():
            whole = await flush(conn, chunks(at_once, lines, 1), bucket_seconds=60, limits=limits)
        parts = chunks(piecemeal, lines, 4)
        for part in parts:  # each flush after the first finds every row stored and adds to it
            async with conn.transaction():
                await flush(conn, [part], bucket_seconds=60, limits=limits)
        async with conn.transaction():  # a chunk seen before is skipped, rows untouched
            again = await flush(conn, parts[:2], bucket_seconds=60, limits=limits)

        expected, got = await stored(conn, at_once), await stored(conn, piecemeal)
    finally:
        await conn.close()
    assert whole.rows == len(expected) > 1
    assert (again.duplicates, again.rows) == (2, 0)
    assert got.keys() == expected.keys()
    for where, values in got.items():
        assert values == pytest.approx(expected[where]), where
