"""The analyzer contract: parse_chunk groups per key and time bucket with sums and a sketch."""

import struct
import uuid
from datetime import UTC, datetime
from pathlib import Path

import cramjam
import pytest

import logparse
from outrider_common.logstats import FIELDS


def epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp())


def test_production_json_groups_per_key_and_minute(logs: Path) -> None:
    chunk = logparse.parse_chunk((logs / "production_json.log").read_bytes())

    assert chunk.log_type == "production_json"
    assert chunk.lines == 10  # eleven physical lines, one blank
    assert chunk.bad_lines == {"invalid_json": 1, "missing_key": 1, "not_json": 1, "wrong_type": 1}
    assert {reason for reason, _ in chunk.samples} == set(chunk.bad_lines)
    groups = {(g.key, g.bucket_start): g for g in chunk.groups}
    ten = epoch("2024-05-01T10:00:00")
    assert set(groups) == {
        ("Projects::IssuesController#show", ten),
        ("Projects::BlobController#show", ten),
        ("Projects::BlobController#show", ten + 60),
    }
    issues = groups[("Projects::IssuesController#show", ten)]
    # 100 + 200 + 400 ms from duration_s, 800 ms from the pre-13.0 `duration` in ms.
    assert (issues.count, issues.failed) == (4, 1)
    assert issues.duration_sum_ms == pytest.approx(1500.0)
    assert issues.duration_sumsq_ms2 == pytest.approx(100**2 + 200**2 + 400**2 + 800**2)
    assert (issues.duration_min_ms, issues.duration_max_ms) == pytest.approx((100.0, 800.0))
    assert issues.db_sum_ms == pytest.approx(20 + 40 + 300 + 100)
    assert issues.gitaly_sum_ms == pytest.approx(10 + 20 + 50)
    assert issues.redis_sum_ms == pytest.approx(5 + 10)
    assert issues.cpu_sum_ms == pytest.approx(50 + 100 + 100)
    late_blob = groups[("Projects::BlobController#show", ten + 60)]
    assert (late_blob.count, late_blob.failed) == (1, 1)
    assert late_blob.duration_sum_ms == pytest.approx(3000.0)
    assert logparse.sketch_quantiles(late_blob.sketch, [0.5]) == [pytest.approx(3000.0, rel=0.01)]


def test_bucket_width_is_respected(logs: Path) -> None:
    chunk = logparse.parse_chunk((logs / "production_json.log").read_bytes(), bucket_seconds=3600)
    assert {g.bucket_start for g in chunk.groups} == {epoch("2024-05-01T10:00:00")}
    assert sum(g.count for g in chunk.groups) == 6


def test_forced_type_that_does_not_match_rejects_lines(logs: Path) -> None:
    chunk = logparse.parse_chunk((logs / "production_json.log").read_bytes(), log_type="gitaly")
    assert chunk.log_type == "gitaly"
    assert chunk.groups == []
    # The requests are production_json's; the one other line is no call of any type.
    assert chunk.skipped == {"other_log_type": 7, "not_a_call": 1}


def test_unknown_type_and_bucket_raise_value_error() -> None:
    with pytest.raises(ValueError, match="unknown log type"):
        logparse.parse_chunk(b"", log_type="nginx")
    with pytest.raises(ValueError, match="bucket_seconds"):
        logparse.parse_chunk(b"", bucket_seconds=0)


def test_empty_input() -> None:
    chunk = logparse.parse_chunk(b"")
    assert (chunk.log_type, chunk.lines, chunk.groups, chunk.bad_lines) == (None, 0, [], {})


def test_merge_groups_adds_chunks_as_if_parsed_together(logs: Path) -> None:
    lines = (logs / "production_json.log").read_bytes().splitlines(keepends=True)
    halves = [logparse.parse_chunk(b"".join(lines[::2])), logparse.parse_chunk(b"".join(lines[1::2]))]
    whole = {(g.key, g.bucket_start): g for g in logparse.parse_chunk(b"".join(lines)).groups}

    merged = {(g.key, g.bucket_start): g for g in logparse.merge_groups(halves)}

    assert set(merged) == set(whole)
    assert sum(len(h.groups) for h in halves) > len(merged)  # some key and bucket is in both halves
    for where, g in merged.items():
        w = whole[where]
        assert (g.count, g.failed, g.duration_min_ms, g.duration_max_ms) == (w.count, w.failed, w.duration_min_ms,
                                                                              w.duration_max_ms)  # fmt: skip
        assert (g.duration_sum_ms, g.db_sum_ms, g.cpu_sum_ms) == pytest.approx((w.duration_sum_ms, w.db_sum_ms,
                                                                                w.cpu_sum_ms))  # fmt: skip
        assert logparse.sketch_quantiles(g.sketch, [0.5, 0.99]) == logparse.sketch_quantiles(w.sketch, [0.5, 0.99])
    assert logparse.merge_groups([]) == []


def _read_copy(stream: bytes) -> list[list[bytes | None]]:
    """PostgreSQL's binary COPY format (docs: COPY, "Binary Format"), read back field by field."""
    assert stream[:11] == b"PGCOPY\n\xff\r\n\0"
    flags, extension = struct.unpack_from(">ii", stream, 11)
    assert (flags, extension) == (0, 0)
    at, rows = 19, []
    while (width := struct.unpack_from(">h", stream, at)[0]) != -1:
        at += 2
        row: list[bytes | None] = []
        for _ in range(width):
            (size,) = struct.unpack_from(">i", stream, at)
            at += 4
            row.append(None if size == -1 else stream[at : at + size])
            at += max(size, 0)
        rows.append(row)
    assert at + 2 == len(stream)  # the trailer ends it
    return rows


def test_stage_rows_are_merge_groups_as_binary_copy_rows(logs: Path) -> None:
    lines = (logs / "production_json.log").read_bytes().splitlines(keepends=True)
    halves = [logparse.parse_chunk(b"".join(lines[::2])), logparse.parse_chunk(b"".join(lines[1::2]))]
    one, two = uuid.uuid4(), uuid.uuid4()

    staged = logparse.stage_rows([(one.bytes, "production_json", halves), (two.bytes, "production_json", halves[:1])])

    columns = logparse.STAGE_COLUMNS
    assert columns == ["n", "engagement_id", "log_type", "key", "bucket", *FIELDS]
    decode = {"n": lambda b: struct.unpack(">i", b)[0], "engagement_id": lambda b: uuid.UUID(bytes=b),
              "log_type": bytes.decode, "key": bytes.decode, "bucket": lambda b: struct.unpack(">q", b)[0],
              "count": lambda b: struct.unpack(">q", b)[0], "failed": lambda b: struct.unpack(">q", b)[0],
              "sketch": bytes}  # fmt: skip
    rows = [
        {c: decode.get(c, lambda b: struct.unpack(">d", b)[0])(v) for c, v in zip(columns, row, strict=True)}
        for row in _read_copy(staged.copy)
    ]
    assert len(staged) == len(rows) > 2
    assert [r["n"] for r in rows] == list(range(len(rows)))
    # Numbered in one order every replica shares, so row locks taken by number never deadlock.
    order = [(r["engagement_id"].bytes, r["log_type"], r["key"].encode(), r["bucket"]) for r in rows]
    assert order == sorted(order)
    assert len({r["bucket"] for r in rows}) > 1
    for n, r in enumerate(rows):
        assert staged.sketch(n) == r["sketch"]
    with pytest.raises(ValueError, match="no staged row"):
        staged.sketch(len(rows))

    def expected(chunks: list[logparse.ChunkStats]) -> list[tuple[object, ...]]:
        return sorted((g.key, g.bucket_start, *(getattr(g, n) for n in FIELDS)) for g in logparse.merge_groups(chunks))

    for engagement, log_type, chunks in ((one, "production_json", halves), (two, "production_json", halves[:1])):
        got = sorted(
            (r["key"], r["bucket"], *(r[n] for n in FIELDS))
            for r in rows
            if (r["engagement_id"], r["log_type"]) == (engagement, log_type)
        )
        assert got == expected(chunks)
    assert len(logparse.stage_rows([])) == 0
    with pytest.raises(ValueError, match="16 bytes"):
        logparse.stage_rows([(b"short", "production_json", halves)])


def test_parse_chunks_expands_zstd_and_agrees_with_parse_chunk(logs: Path) -> None:
    data = (logs / "production_json.log").read_bytes()
    packed = bytes(cramjam.zstd.compress(data, level=3))
    plain, expanded, forced, broken = logparse.parse_chunks(
        [(data, None, False), (packed, None, True), (data, "gitaly", False), (data, None, True)]
    )
    one = logparse.parse_chunk(data)

    for got in (plain, expanded):
        assert isinstance(got, logparse.ChunkStats)
        assert (got.log_type, got.lines, got.size, got.bad_lines) == (one.log_type, one.lines, len(data), one.bad_lines)
        assert sorted((g.key, g.bucket_start, g.count) for g in got.groups) == sorted(
            (g.key, g.bucket_start, g.count) for g in one.groups
        )
    assert isinstance(forced, logparse.ChunkStats)
    assert forced.groups == []  # the forced type, as parse_chunk does
    assert isinstance(broken, str)
    assert broken.startswith("value is not zstd or is damaged")
    with pytest.raises(ValueError, match="unknown log type"):
        logparse.parse_chunks([(data, "nginx", False)])


def test_compress_chunk_writes_a_checksummed_frame_that_parse_chunks_verifies(logs: Path) -> None:
    data = (logs / "production_json.log").read_bytes()
    frame = logparse.compress_chunk(data)
    # Frame header (RFC 8878 §3.1.1.1): magic, then the descriptor, whose bit 2 says a content checksum follows
    # the last block and whose top bits give the content size field (the analyzer's one-shot expansion needs it).
    assert frame[:4] == b"\x28\xb5\x2f\xfd"
    descriptor = frame[4]
    assert descriptor & 0x04, "no content checksum"
    assert descriptor >> 6 or descriptor & 0x20, "no content size"
    assert bytes(cramjam.zstd.decompress(frame)) == data
    assert logparse.compress_chunk(data, level=1) != frame  # the level is used

    # The last 4 bytes are the checksum: one wrong bit and the value is refused, not counted.
    damaged = frame[:-1] + bytes([frame[-1] ^ 0x01])
    good, bad = logparse.parse_chunks([(frame, None, True), (damaged, None, True)])
    assert isinstance(good, logparse.ChunkStats)
    assert good.lines == logparse.parse_chunk(data).lines
    assert isinstance(bad, str)
    assert bad.startswith("value is not zstd or is damaged")
    assert "checksum" in bad.lower()


def test_parse_chunks_refuses_a_value_that_expands_past_256_mib() -> None:
    bomb = bytes(cramjam.zstd.compress(b"\n" * ((256 << 20) + 1), level=1))
    assert len(bomb) < 1 << 20
    (result,) = logparse.parse_chunks([(bomb, None, True)])
    assert result == "value expands to more than 256 MiB"
