"""Bad input is counted by reason, explained with --verbose, and never escapes as an exception."""

import json
from pathlib import Path

import pytest

from outrider.stats.sources import BLOCK_BYTES
from tests.stats.conftest import Run, sections


def test_count_is_printed_without_verbose(run: Run, logs: Path) -> None:
    assert (
        "production_json: 4 of 10 lines could not be used (--verbose tells why)"
        in run(logs / "production_json.log").stderr
    )


def test_counts_name_their_log_type(run: Run, logs: Path) -> None:
    err = run(logs / "production_json.log", logs / "sidekiq.log").stderr
    assert "production_json: 4 of 10 lines could not be used" in err
    assert "sidekiq: 2 of 9 lines could not be used" in err


def test_verbose_explains_reasons_with_samples(run: Run, logs: Path) -> None:
    err = run(logs / "sidekiq.log", "--verbose").stderr
    assert "log type: sidekiq; 9 lines read" in err
    assert "skipped 1 lines: job start" in err
    assert "bad 1 lines: not utf8" in err
    assert "missing_key: {" in err


def test_binary_garbage_does_not_crash(run: Run, tmp_path: Path) -> None:
    junk = tmp_path / "junk.log"
    junk.write_bytes(bytes(range(256)) * 50 + b'\n{"controller": [1, {"a": null}]}\n' + b"{" * 5000 + b"\n")
    for cmd in ("table", "top", "errors"):  # not one line counted: said so, exit 2
        err = run(junk, "--type", "production_json", cmd=cmd, code=2).stderr
        assert err.startswith("production_json: no line counted; drop --type to detect the log type\n")


def test_a_time_out_of_range_is_a_bad_line_not_the_end_of_the_span(run: Run, tmp_path: Path) -> None:
    line = '{"controller":"A","action":"b","duration_s":0.1,"time":%s}\n'
    log = tmp_path / "production_json.log"
    log.write_text(line % '"2024-05-01T10:00:00Z"' + line % "1e15" + line % '"2024-05-01T10:01:00Z"')
    doc = json.loads(run(log, "--format", "json").stdout)
    assert (doc["lines"], doc["bad_lines"], doc["end"]) == (3, {"time_out_of_range": 1}, "2024-05-01T10:01:00Z")
    assert doc["sections"][0]["totals"]["rps"] == pytest.approx(2 / 60, abs=0.001)
    windows = [s["title"] for s in sections(run(log, "--format", "json", "--interval", "1m"))]
    assert windows == ["2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z"]
    assert "bad 1 lines: time out of range" in run(log, "--verbose").stderr


def test_a_duration_too_large_to_hold_in_ms_is_a_bad_line(run: Run, tmp_path: Path) -> None:
    # 1e306 s is a finite number, but not in ms: it would make the maximum, P99 and STDDEV inf and NaN.
    line = '{"controller":"A","action":"b","duration_s":%s,"time":"2024-05-01T10:00:0%dZ"}\n'
    log = tmp_path / "production_json.log"
    log.write_text(line % ("0.1", 0) + line % ("1e306", 1) + line % ("0.3", 2))
    for approximate in ((), ("--approximate",)):
        doc = json.loads(run(log, "--format", "json", *approximate).stdout)
        assert (doc["lines"], doc["bad_lines"]) == (3, {"duration_out_of_range": 1})
        totals = doc["sections"][0]["totals"]
        assert (totals["count"], totals["max"]) == (2, pytest.approx(300))
        assert totals["stddev"] == pytest.approx(100)


def test_a_line_longer_than_a_read_block_counts_once(run: Run, tmp_path: Path) -> None:
    line = b'{"controller":"A","action":"b","duration_s":0.1,"time":"2024-05-01T10:00:00Z"}\n'
    huge = b'{"controller":"A","action":"b","params":"' + b"x" * (BLOCK_BYTES + (2 << 20)) + b'"}\n'
    log = tmp_path / "production_json.log"
    log.write_bytes(line + huge + line * 2)
    doc = json.loads(run(log, "--format", "json").stdout)
    assert (doc["lines"], doc["bad_lines"], doc["sections"][0]["totals"]["count"]) == (4, {"too_long": 1}, 3)


def test_a_time_that_cannot_be_read_is_a_bad_line_not_an_untimed_request(run: Run, tmp_path: Path) -> None:
    line = '{"controller":"A","action":"b","duration_s":0.1%s}\n'
    log = tmp_path / "production_json.log"
    log.write_text(line % ',"time":"2024-05-01T10:00:00Z"' + line % ',"time":"2024-05-01 10:00:30 UTC"' + line % "")
    doc = json.loads(run(log, "--format", "json").stdout)
    assert (doc["lines"], doc["bad_lines"], doc["sections"][0]["totals"]["count"]) == (3, {"bad_time": 1}, 2)
    assert "bad 1 lines: bad time" in run(log, "--verbose").stderr
