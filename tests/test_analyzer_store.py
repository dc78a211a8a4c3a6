"""The analyzer's flush against real PostgreSQL: adding to stored rows gives what one write of everything gives, and
it reads back every row a finding could come from."""

import asyncio
import json
import random
import string
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import asyncpg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import logparse
from outrider_analyzer.findings import Thresholds, candidate_params, candidates_sql, evaluate
from outrider_analyzer.store import Flushed, flush, stage
from outrider_common.db import migrate
from outrider_common.events import FindingRule, LogChunk
from outrider_common.logstats import FIELDS, Aggregate, StatsKey
from outrider_tracker.stats import service as stats_service

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


Rows = dict[tuple[str, object], list[float]]  # (key, bucket start) -> numbers, then sketch quantiles


async def stored(conn: asyncpg.Connection, engagement: uuid.UUID) -> Rows:
    """Each row's numbers, and the sketch's quantiles in place of its bytes."""
    rows = await conn.fetch("SELECT * FROM log_stats WHERE engagement_id = $1", engagement)
    return {
        (r["key"], r["bucket_start"]): [
            *(r[n] for n in FIELDS[:-1]),
            *logparse.sketch_quantiles(r["sketch"], QUANTILES),
        ]
        for r in rows
    }


def fixture_lines() -> list[bytes]:
    """The production_json fixture's lines, each with its newline."""
    return (FIXTURES / "production_json.log").read_bytes().splitlines(keepends=True)


def assert_same_rows(got: Rows, expected: Rows) -> None:
    """The same rows, with the same numbers and sketch quantiles."""
    assert got.keys() == expected.keys()
    for where, values in got.items():
        assert values == pytest.approx(expected[where]), where


@pytest.fixture
async def store(database_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a database with the analyzer's tables."""
    migrate(database_dsn)
    conn = await asyncpg.connect(database_dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def test_flushes_that_add_to_stored_rows_equal_one_flush_of_everything(store: asyncpg.Connection) -> None:
    conn, lines, limits = store, fixture_lines(), Thresholds()
    at_once, piecemeal = uuid.uuid4(), uuid.uuid4()
    async with conn.transaction():
        whole = await flush(conn, chunks(at_once, lines, 1), bucket_seconds=60, limits=limits)
    parts = chunks(piecemeal, lines, 4)
    for part in parts:  # each flush after the first finds every row stored and adds to it
        async with conn.transaction():
            await flush(conn, [part], bucket_seconds=60, limits=limits)
    async with conn.transaction():  # a chunk seen before is skipped, rows untouched
        again = await flush(conn, parts[:2], bucket_seconds=60, limits=limits)

    expected, got = await stored(conn, at_once), await stored(conn, piecemeal)
    assert whole.rows == len(expected) > 1
    assert (again.duplicates, again.rows) == (2, 0)
    assert_same_rows(got, expected)


async def test_rows_staged_ahead_are_staged_again_without_the_chunks_counted_before(store: asyncpg.Connection) -> None:
    """The flusher stages a lot before its transaction claims the chunks; a chunk counted meanwhile (a re-read after
    a restart, or the same chunk twice in one lot) must not reach the rows through the staged-ahead copy."""
    conn, lines, limits = store, fixture_lines(), Thresholds()
    ahead, plain = uuid.uuid4(), uuid.uuid4()
    for engagement in (ahead, plain):
        parts = chunks(engagement, lines, 4)
        async with conn.transaction():
            await flush(conn, parts[:2], bucket_seconds=60, limits=limits)
        lot = [parts[1], *parts[1:]]  # part 1 counted before, and twice in the lot
        staged = await stage(lot) if engagement == ahead else None
        assert staged is None or len(staged) > 0
        async with conn.transaction():
            done = await flush(conn, lot, bucket_seconds=60, limits=limits, staged=staged)
        assert (done.duplicates, len(done.counted)) == (2, 2)
        data = b"".join(lines[:7])
        chunk = LogChunk(engagement_id=engagement, source="t", file_id="g", offset=0, lines=7)
        rest = [(chunk, logparse.parse_chunk(data, "production_json"))]
        async with conn.transaction():  # all new: the staged-ahead rows are used as they are
            done = await flush(conn, rest, bucket_seconds=60, limits=limits, staged=await stage(rest))
        assert (done.duplicates, len(done.counted)) == (0, 1)
        assert done.rows > 0
    got, expected = await stored(conn, ahead), await stored(conn, plain)
    total = await conn.fetchval("SELECT sum(count) FROM log_stats WHERE engagement_id = $1", ahead)
    requests = [b"".join(lines), b"".join(lines[:7])]  # every line once, plus the last chunk's
    assert total == sum(g.count for data in requests for g in logparse.merge_groups([logparse.parse_chunk(data)]))
    assert_same_rows(got, expected)


# A window: log type, requests, failed ones, request durations (ms), mean Sidekiq queue time (ms).
Window = tuple[str, int, int, list[float], float]
windows = st.lists(
    st.tuples(
        st.sampled_from(logparse.LOG_TYPES),
        st.integers(1, 120),
        st.floats(0, 1),
        st.lists(st.floats(0.5, 20_000), min_size=1, max_size=20),
        st.floats(0, 30_000),
    ).map(lambda w: (w[0], w[1], round(w[1] * w[2]), w[3], w[4])),
    min_size=1,
    max_size=30,
)
limits_strategy = st.builds(
    Thresholds,
    min_count=st.integers(1, 40),
    slow_endpoint_p99_ms=st.sampled_from([5000.0, 20.0, 1000.0]) | st.floats(1, 20_000),
    error_rate=st.sampled_from([0.05, 0.1, 0.5]) | st.floats(0.001, 1),
    slow_gitaly_p99_ms=st.sampled_from([1000.0, 5000.0]) | st.floats(1, 20_000),
    sidekiq_queue_ms=st.sampled_from([10_000.0]) | st.floats(1, 30_000),
)


EVERY_RULE: list[Window] = [  # under the default limits, one window for each rule
    ("production_json", 30, 0, [9000.0] * 3, 0.0),  # slow_endpoint
    ("api_json", 30, 15, [10.0], 0.0),  # error_spike
    ("gitaly", 30, 0, [3000.0] * 3, 0.0),  # slow_gitaly
    ("sidekiq", 30, 0, [10.0], 20_000.0),  # sidekiq_latency
]


def _aggregate(window: Window) -> Aggregate:
    _, count, failed, durations, queue_mean = window
    sketch = logparse.Sketch()
    sketch.extend(durations)
    return Aggregate(count=count, failed=failed, duration_max_ms=max(durations), queue_sum_ms=queue_mean * count,
                     sketch=sketch.to_bytes())  # fmt: skip


def test_the_flush_reads_back_every_window_a_rule_could_fire_on(database_dsn: str) -> None:
    """`candidates_sql` (run by PostgreSQL) keeps every window `evaluate` fires on, and drops quiet ones."""
    migrate(database_dsn)
    query = f"""
        SELECT i FROM unnest($5::integer[], $6::bigint[], $7::bigint[], $8::float8[], $9::float8[])
            AS w(i, count, failed, duration_max_ms, queue_sum_ms)
        WHERE {candidates_sql(1)}
    """

    with asyncio.Runner() as runner:
        conn = runner.run(asyncpg.connect(database_dsn))

        def kept(windows: list[Window], limits: Thresholds) -> set[int]:
            aggs = [_aggregate(w) for w in windows]
            columns = [list(range(len(aggs))), [a.count for a in aggs], [a.failed for a in aggs],
                       [a.duration_max_ms for a in aggs], [a.queue_sum_ms for a in aggs]]  # fmt: skip
            return {r["i"] for r in runner.run(conn.fetch(query, *candidate_params(limits), *columns))}

        def fired(windows: list[Window], limits: Thresholds) -> set[int]:
            at = datetime(2024, 5, 1, tzinfo=UTC)
            return {i for i, w in enumerate(windows) if evaluate(StatsKey(uuid.UUID(int=0), w[0], "k", at),
                                                                 _aggregate(w), limits)}  # fmt: skip

        rules_fired: set[str] = set()

        def rules(windows: list[Window], limits: Thresholds) -> set[str]:
            at = datetime(2024, 5, 1, tzinfo=UTC)
            return {t.rule for w in windows for t in evaluate(StatsKey(uuid.UUID(int=0), w[0], "k", at),
                                                              _aggregate(w), limits)}  # fmt: skip

        @settings(max_examples=150, deadline=None)
        @given(windows, limits_strategy)
        @example(EVERY_RULE, Thresholds())  # each rule fires at least once, whatever hypothesis draws
        def superset(windows: list[Window], limits: Thresholds) -> None:
            assert fired(windows, limits) <= kept(windows, limits)
            rules_fired.update(rules(windows, limits))

        try:
            superset()
            assert rules_fired == set(get_args(FindingRule))  # a rule that never fires would pass `<=` vacuously
            # On the edges (a share of failures or a mean queue time exactly at the limit: not over it) and in
            # between: each rule's window is kept, a quiet or thin one is not.
            limits = Thresholds(min_count=20, error_rate=0.05, slow_endpoint_p99_ms=5000, sidekiq_queue_ms=10_000,
                                slow_gitaly_p99_ms=1000)  # fmt: skip
            cases: list[Window] = [
                ("production_json", 40, 0, [100.0] * 5 + [9000.0] * 5, 0.0),  # slow: fires
                ("api_json", 20, 2, [100.0], 0.0),  # 10 % failed: fires
                ("production_json", 20, 1, [100.0], 0.0),  # 5 % failed: at the limit, quiet
                ("sidekiq", 20, 0, [100.0], 10_001.0),  # queued too long: fires
                ("sidekiq", 20, 0, [100.0], 10_000.0),  # at the limit: quiet
                ("production_json", 19, 19, [9000.0], 0.0),  # too few requests to judge
                ("gitaly", 50, 0, [100.0, 200.0], 0.0),  # quiet
                ("gitaly", 30, 0, [100.0] * 5 + [3000.0] * 5, 0.0),  # p99 3 s: over Gitaly's 1 s (not 5 s): fires
                ("gitaly", 30, 0, [900.0] * 10, 0.0),  # under Gitaly's limit: quiet
                ("gitaly", 19, 0, [3000.0] * 10, 0.0),  # slow, but too few calls to judge
            ]
            assert fired(cases, limits) == {0, 1, 3, 7}
            assert kept(cases, limits) == {0, 1, 3, 7}
            assert rules(cases, limits) == set(get_args(FindingRule))
        finally:
            runner.run(conn.close())


async def _flush_lines(dsn: str, data: bytes) -> tuple[Flushed, list[asyncpg.Record]]:
    """Flush `data` as one chunk of a new engagement; what the flush did and the key and count it stored per row."""
    migrate(dsn)
    engagement = uuid.uuid4()
    chunk = LogChunk(engagement_id=engagement, source="t", file_id="f", offset=0, lines=data.count(b"\n"))
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            done = await flush(conn, [(chunk, logparse.parse_chunk(data))], bucket_seconds=60, limits=Thresholds())
        return done, await conn.fetch("SELECT key, count FROM log_stats WHERE engagement_id = $1", engagement)
    finally:
        await conn.close()


async def test_a_key_with_a_nul_character_is_stored_not_retried_forever(database_dsn: str) -> None:
    """PostgreSQL text cannot hold U+0000, which JSON may escape into a controller or route name."""
    line = (
        b'{"controller":"Nul\\u0000Controller","action":"show","status":200,"duration_s":1,'
        b'"time":"2024-05-01T10:00:00Z"}\n'
    )
    done, rows = await _flush_lines(database_dsn, line)
    assert done.rows == 1
    assert [r["key"] for r in rows] == ["Nul\ufffdController#show"]


async def test_a_key_too_long_for_an_index_is_cut_and_still_counted(database_dsn: str) -> None:
    """PostgreSQL's btree index takes keys up to ~2.7 kB; a route or class name past 1 kB is cut with `…`."""
    name = "".join(random.Random(7).choices(string.ascii_letters + "é", k=5000))  # barely compressible
    line = json.dumps({"controller": name, "action": "show", "status": 200, "duration_s": 1,
                       "time": "2024-05-01T10:00:00Z"}).encode() + b"\n"  # fmt: skip
    _, rows = await _flush_lines(database_dsn, line * 2)
    ((key, count),) = rows
    assert count == 2
    assert key.endswith("…")
    assert name.startswith(key[:-1])
    assert 1000 < len(key[:-1].encode()) <= 1024


async def test_a_chunk_id_counted_before_with_other_lines_is_a_conflict_not_a_silent_duplicate(
    store: asyncpg.Connection,
) -> None:
    # A range sent again from the same start but longer (a client re-sending a grown file) repeats the chunk id.
    conn, lines, limits = store, fixture_lines(), Thresholds()
    engagement = uuid.uuid4()
    short, longer = b"".join(lines[:5]), b"".join(lines[:9])
    first = LogChunk(engagement_id=engagement, source="t", file_id="f", offset=0, lines=5)
    again = LogChunk(engagement_id=engagement, source="t", file_id="f", offset=0, lines=9)
    async with conn.transaction():
        await flush(conn, [(first, logparse.parse_chunk(short, "production_json"))], bucket_seconds=60, limits=limits)
    async with conn.transaction():
        same = await flush(conn, [(first, logparse.parse_chunk(short, "production_json"))], bucket_seconds=60,
                           limits=limits)  # fmt: skip
        grown_stats = logparse.parse_chunk(longer, "production_json")
        grown = await flush(conn, [(again, grown_stats)], bucket_seconds=60, limits=limits)
    counted = logparse.parse_chunk(short, "production_json")
    assert (same.duplicates, same.conflicts) == (1, [])  # a re-read: nothing to say
    assert grown.duplicates == 1
    assert grown_stats.lines > counted.lines
    assert [(c.chunk_id, s, before) for c, s, before in grown.conflicts] == [
        (first.chunk_id, grown_stats, (counted.lines, sum(counted.bad_lines.values())))
    ]


async def test_a_key_that_always_fails_as_often_raises_no_spike_until_it_fails_more(store: asyncpg.Connection) -> None:
    """The baseline is read back from the stored rows, those this flush wrote before the window included."""
    conn, engagement = store, uuid.uuid4()

    def minute(m: int, failed: int) -> bytes:
        return b"".join(
            b'{"method":"GET","route":"/api/:version/jobs/request","status":%d,"duration_s":0.01,'
            b'"time":"2024-05-01T10:%02d:%02dZ"}\n' % (500 if i < failed else 200, m, i)
            for i in range(40)
        )

    def lot(minutes: range, failed: int, offset: int) -> list[tuple[LogChunk, logparse.ChunkStats]]:
        data = b"".join(minute(m, failed) for m in minutes)
        chunk = LogChunk(engagement_id=engagement, source="t", file_id="f", offset=offset, lines=data.count(b"\n"))
        return [(chunk, logparse.parse_chunk(data, "api_json"))]

    raised = []
    async with conn.transaction():  # an hour's backlog in one flush: one in ten failed every minute
        raised += (await flush(conn, lot(range(10), 4, 0), bucket_seconds=60, limits=Thresholds())).findings
    for m, failed in [(10, 4), (11, 20), (12, 4)]:  # live: as usual, then half, then as usual again
        async with conn.transaction():
            raised += (await flush(conn, lot(range(m, m + 1), failed, m), bucket_seconds=60,
                                   limits=Thresholds())).findings  # fmt: skip
    assert [(f.window_start.minute, f.figures.get("baseline_rate")) for f in raised] == [
        (0, None),  # nothing before it to compare with: 10 % is over the 5 % line
        (11, pytest.approx(0.1)),
    ]
    stored = await conn.fetch("SELECT window_start FROM findings WHERE engagement_id = $1", engagement)
    assert sorted(r["window_start"].minute for r in stored) == [0, 11]


async def test_the_stats_query_merges_a_few_keys_sketches_at_a_time_to_the_same_figures(
    store: asyncpg.Connection,
) -> None:
    """The tracker reads an engagement's stored sketches through a cursor, merging them a batch at a time, so that a
    long history is never held whole: batches of any size give the figures one merge gives."""
    conn, engagement, rng = store, uuid.uuid4(), random.Random(5)
    lines = [
        b'{"controller":"C%d","action":"show","status":200,"duration_s":%f,"time":"2024-05-01T10:%02d:00Z"}\n'
        % (rng.randrange(6), rng.lognormvariate(-2, 1), rng.randrange(9))
        for _ in range(400)
    ]
    async with conn.transaction():
        await flush(conn, chunks(engagement, lines, 3), bucket_seconds=60, limits=Thresholds())
    args = (engagement, None, None, None)
    whole = await stats_service._merged_keys(conn, *args, sketches_at_once=10**9)
    assert len(whole) == 6
    assert sum(a.sketch is not None for a in whole.values()) == len(whole)
    for at_once in (1, 2, 7):
        piecewise = await stats_service._merged_keys(conn, *args, sketches_at_once=at_once)
        assert piecewise.keys() == whole.keys()
        for key, agg in whole.items():
            assert piecewise[key].count == agg.count
            assert piecewise[key].quantiles(QUANTILES) == agg.quantiles(QUANTILES), key
