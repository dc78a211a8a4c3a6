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


async def store_chunks(dsn: str, engagement_id: str, *chunks: tuple[bytes, str | None]) -> None:
    """Count each (lines, log type named or None) as one chunk, as the analyzer does."""
    parsed = [
        (LogChunk(engagement_id=uuid.UUID(engagement_id), source="t", file_id="f", offset=i, lines=data.count(b"\n"),
                  log_type=log_type), logparse.parse_chunk(data, log_type))
        for i, (data, log_type) in enumerate(chunks)
    ]  # fmt: skip
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await flush(conn, parsed, bucket_seconds=60, limits=Thresholds())
    finally:
        await conn.close()


def test_lines_without_a_time_count_in_no_bounded_range(tracker: str, database_dsn: str) -> None:
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "n", "customer": "c"}).json()["id"]
    line = b'{"controller":"C","action":"d","duration_s":0.1,"status":200%s}\n'
    timed, untimed = line % b',"time":"2024-05-01T13:00:30Z"', line % b""
    unreadable = line % b',"time":"2024-05-01 13:00:30 UTC"'  # not a format GitLab writes: a bad line
    asyncio.run(store_chunks(database_dsn, eid, (timed * 3 + untimed * 2 + unreadable * 2, "production_json")))

    def counted(**bounds: str) -> tuple[int, int | None]:
        body = as_admin.get(f"{tracker}/v1/engagements/{eid}/stats", params=bounds).raise_for_status().json()
        return body["total_count"], body.get("untimed_count")

    assert counted() == (5, 2)  # every request, timed or not
    assert counted(since="2024-05-01T00:00:00Z", until="2024-05-02T00:00:00Z") == (3, 2)  # the day: its 3
    assert counted(until="2024-05-01T13:00:00Z") == (0, 2)  # nothing was logged before 13:00
    assert counted(since="2024-05-01T13:00:00Z") == (3, 2)


def test_each_log_type_s_rate_is_over_its_own_span(tracker: str, database_dsn: str) -> None:
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "n", "customer": "c"}).json()["id"]
    # production_json from 10:00:00 to 10:01:00 (61 requests), api_json from 11:00:00 to 11:00:10 (11), and a Helm
    # stdout of both, shipped without a log type, within those same spans (6 and 4 more).
    prod = b'{"subcomponent":"production_json","controller":"C","action":"d","duration_s":0.1,"time":"%s"}\n'
    api = b'{"subcomponent":"api_json","route":"/r","method":"GET","duration_s":0.1,"time":"%s"}\n'
    prods = b"".join(prod % b"2024-05-01T10:%02d:%02dZ" % divmod(s, 60) for s in range(61))
    apis = b"".join(api % b"2024-05-01T11:00:%02dZ" % s for s in range(11))
    mixed = prod % b"2024-05-01T10:00:30Z" * 6 + api % b"2024-05-01T11:00:05Z" * 4
    asyncio.run(store_chunks(database_dsn, eid, (prods, "production_json"), (apis, "api_json"), (mixed, None)))

    def totals(**params: str) -> tuple[dict[str, tuple[int, float]], float]:
        body = as_admin.get(f"{tracker}/v1/engagements/{eid}/stats", params=params).raise_for_status().json()
        return {t["log_type"]: (t["count"], t["rps"]) for t in body["totals"]}, body["span_seconds"]

    # The mixed chunk spans 10:00:30 to 11:00:05: within each type's own span, which it leaves as it was.
    both = {"production_json": (67, pytest.approx(67 / 60)), "api_json": (15, pytest.approx(15 / 10))}
    assert totals() == (both, 3610.0)
    assert totals(log_type="api_json") == ({"api_json": both["api_json"]}, 10.0)
    assert totals(log_type="production_json") == ({"production_json": both["production_json"]}, 60.0)
