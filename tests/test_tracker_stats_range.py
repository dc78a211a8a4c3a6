"""`/stats` is kept per minute: a range is widened to whole minutes, the request rate is counted over that same
widened range, and the answer says which range it used."""

import asyncio
import uuid

import asyncpg
import pytest

import logparse
from outrider_analyzer.findings import Thresholds
from outrider_analyzer.store import flush
from outrider_common.events import LogChunk
from tests.stack import as_admin

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
# One request a second from 10:00:00 to 10:05:59: 60 in each of six minutes.
LINES = b"".join(
    b'{"controller":"C","action":"show","status":200,"duration_s":0.1,"time":"2024-05-01T10:%02d:%02dZ"}\n'
    % divmod(s, 60)
    for s in range(360)
)


async def store(dsn: str, engagement_id: str) -> None:
    """Count the lines as the analyzer does, one chunk, per minute."""
    chunk = LogChunk(engagement_id=uuid.UUID(engagement_id), source="t", file_id="f", offset=0, lines=360)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await flush(conn, [(chunk, logparse.parse_chunk(LINES))], bucket_seconds=60, limits=Thresholds())
    finally:
        await conn.close()


def test_a_range_is_widened_to_whole_minutes(tracker: str, database_dsn: str) -> None:
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "n", "customer": "c"}).json()["id"]
    asyncio.run(store(database_dsn, eid))

    def stats(**bounds: str) -> tuple[int, float, float, str | None, str | None]:
        body = as_admin.get(f"{tracker}/v1/engagements/{eid}/stats", params=bounds).raise_for_status().json()
        (total,) = body["totals"]
        return total["count"], total["rps"], body["span_seconds"], body.get("counted_since"), body.get("counted_until")

    # Until the middle of 10:00: that whole minute (60 requests) over its 60 seconds, not over 30.
    assert stats(until="2024-05-01T10:00:30Z") == (60, 1.0, 60.0, None, "2024-05-01T10:01:00Z")
    # Since the last second of 10:04: the 10:04 minute is counted too, from its start to the last line at 10:05:59.
    assert stats(since="2024-05-01T10:04:59Z") == (120, pytest.approx(120 / 119), 119.0, "2024-05-01T10:04:00Z",
                                                   None)  # fmt: skip
    # Whole minutes already: as before, and as `outrider stats` counts them.
    assert stats(since="2024-05-01T10:01:00Z", until="2024-05-01T10:03:00Z") == (
        120, 1.0, 120.0, "2024-05-01T10:01:00Z", "2024-05-01T10:03:00Z"
    )  # fmt: skip
    assert stats() == (360, pytest.approx(360 / 359), 359.0, None, None)
    # An offset is the same instant: the range comes back in UTC.
    assert stats(since="2024-05-01T12:04:59+02:00")[3] == "2024-05-01T10:04:00Z"
