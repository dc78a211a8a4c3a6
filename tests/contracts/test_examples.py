"""Every example payload validates against its contract."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

import logparse
from outrider_common.events import NDJSON, EngagementEvent, LogChunk
from outrider_common.topics import ALL_TOPICS, ENGAGEMENT_EVENTS, LOGS_RAW

EXAMPLES = Path(__file__).parent / "examples"


def load(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def test_log_chunk_headers_round_trip() -> None:
    chunk = LogChunk.from_headers(load(f"{LOGS_RAW.name}.headers.json"))
    assert chunk.offset == 1048576
    assert (
        chunk.chunk_id == "gitlab-rails-1.acme.internal|/var/log/gitlab/gitlab-rails/production_json.log:131075|1048576"
    )
    assert chunk.key == b"6f1c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f/gitlab-rails-1.acme.internal"
    headers = chunk.to_headers()
    assert headers["content-type"] == NDJSON
    assert LogChunk.from_headers(headers) == chunk


def test_log_chunk_value_is_read_back_by_the_analyzers_parser() -> None:
    lines = b'{"controller":"A","action":"b","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:00Z"}\n' * 1000
    zstd = LogChunk.from_headers(load(f"{LOGS_RAW.name}.headers.json"))
    assert zstd.encoding == "zstd"
    packed = zstd.pack(lines)
    assert len(packed) < len(lines) // 10
    plain = zstd.model_copy(update={"encoding": "identity"})
    assert plain.pack(lines) is lines
    # What the analyzer does with a record: expand (if its headers say zstd) and parse, in one Rust call.
    for chunk, value in ((zstd, packed), (plain, lines)):
        (stats,) = logparse.parse_chunks([(value, chunk.log_type, chunk.encoding == "zstd")])
        assert not isinstance(stats, str)
        assert (stats.lines, stats.size, sum(g.count for g in stats.groups)) == (1000, len(lines), 1000)
    # Headers from before the field existed mean an uncompressed value.
    assert LogChunk.from_headers({k: v for k, v in zstd.to_headers().items() if k != "encoding"}).encoding == "identity"


def test_distinct_sources_files_and_offsets_never_share_a_chunk_id() -> None:
    example = LogChunk.from_headers(load(f"{LOGS_RAW.name}.headers.json"))
    names = [
        ("host|x", "y", 0),  # QA's pair: both were `host|x|y|0`, and the second upload was dropped as a duplicate
        ("host", "x|y", 0),
        ("host%7Cx", "y", 0),  # what percent-encoding `host|x` gives, sent as a plain name
        ("quoted|host%7Cx", "y", 0),
        ("quoted", "host%7Cx|y", 0),
        ("quoted", "host%7Cx%7Cy", 0),
        ("a", "b|1", 0),
        ("a|b", "1", 0),
        ("a|b", "1|0", 0),
        ("a", "b|1|0", 0),
        ("|", "|", 0),
    ]
    chunks = [example.model_copy(update={"source": s, "file_id": f, "offset": o}) for s, f, o in names]
    ids = [c.chunk_id for c in chunks]
    assert len(set(ids)) == len(names), ids
    # Headers carry the names, not the id: a record read back has the id it was produced with.
    assert [LogChunk.from_headers(c.to_headers()).chunk_id for c in chunks] == ids
    # Names without `|` keep the id earlier versions stored, so a chunk resent after an upgrade still dedupes.
    assert example.model_copy(update={"source": "h%7C1", "file_id": "bundle:b.tar.gz:x/current"}).chunk_id == (
        "h%7C1|bundle:b.tar.gz:x/current|1048576"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("version", "2"), ("encoding", "gzip"), ("offset", "-1"), ("engagement_id", "nope"), ("source", "a\x00b"),
     ("file_id", "a\nb"), ("source", "a\x7f")],
)  # fmt: skip
def test_log_chunk_rejects_bad_headers(field: str, value: str) -> None:
    headers = {**load(f"{LOGS_RAW.name}.headers.json"), field: value}
    with pytest.raises(ValidationError, match=field):
        LogChunk.from_headers(headers)


def test_engagement_event_example() -> None:
    event = EngagementEvent.model_validate(load(f"{ENGAGEMENT_EVENTS.name}.json"))
    assert event.type == "engagement.created"


def test_topic_registry_is_consistent() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(set(names)) == len(names)
    assert all(t.dead_letter.startswith(t.name) and t.dead_letter != t.name for t in ALL_TOPICS)
