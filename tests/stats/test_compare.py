"""`outrider stats compare A B`: per-key A, B and delta, and the keys only one side has."""

import csv
import io
import json
from pathlib import Path

import pytest

import logparse
from outrider.stats import views
from tests.stats.conftest import Run, rows_by_key, sections

# B is the first two lines of A. (key in both, count A, count B, median A, median B, key only in A)
CASES = [
    ("production_json", "Projects::IssuesController#show", 4, 2, 300.0, 150.0, "Projects::BlobController#show"),
    ("api_json", "POST /api/:version/runners/verify", 3, 2, 40.0, 30.0, "GET /api/:version/projects/:id"),
    ("gitaly", "FindCommit", 3, 2, 4.0, 3.0, "PostUploadPackWithSidechannel"),
    ("sidekiq", "AdminEmailsWorker", 2, 1, 1000.0, 500.0, "PostReceive"),
]


@pytest.mark.parametrize(("log", "key", "count_a", "count_b", "median_a", "median_b", "only_a"), CASES)
def test_compare_on_every_format(
    run: Run,
    logs: Path,
    tmp_path: Path,
    log: str,
    key: str,
    count_a: int,
    count_b: int,
    median_a: float,
    median_b: float,
    only_a: str,
) -> None:
    full = logs / f"{log}.log"
    head = tmp_path / f"{log}-head.log"
    head.write_bytes(b"".join(full.read_bytes().splitlines(keepends=True)[:2]))

    both, in_a, in_b = sections(run(full, head, "--format", "json", cmd="compare"))

    row = rows_by_key(both)[key]
    assert (row["count_a"], row["count_b"], row["count_delta"]) == (count_a, count_b, count_b - count_a)
    assert (row["median_a"], row["median_b"]) == (pytest.approx(median_a), pytest.approx(median_b))
    assert row["median_delta"] == pytest.approx(median_b - median_a)
    assert [r["key"] for r in in_a["rows"]] == [only_a]
    assert in_b["rows"] == []
    assert in_a["title"] == "Only in A (1 key)"


def test_keys_only_in_b(run: Run, logs: Path, tmp_path: Path) -> None:
    head = tmp_path / "head.log"
    head.write_bytes(b"".join((logs / "gitaly.log").read_bytes().splitlines(keepends=True)[:2]))
    _, in_a, in_b = sections(run(head, logs / "gitaly.log", "--format", "json", cmd="compare"))
    assert (in_a["rows"], [r["key"] for r in in_b["rows"]]) == ([], ["PostUploadPackWithSidechannel"])


def test_different_log_types_cannot_be_compared(run: Run, logs: Path) -> None:
    result = run(logs / "gitaly.log", logs / "sidekiq.log", cmd="compare", code=2)
    assert "cannot compare" in result.stderr


def report_of(data: bytes) -> logparse.LogReport:
    report = logparse.LogReport()
    report.feed(data)
    return report


@pytest.mark.parametrize("garbage_first", [True, False])
def test_a_side_without_gitlab_lines_is_named(logs: Path, garbage_first: bool) -> None:
    gitaly = ("gitaly.log", report_of((logs / "gitaly.log").read_bytes()))
    garbage = ("garbage.bin", report_of(b"\x00\xff\n" * 3))
    sides = (garbage, gitaly) if garbage_first else (gitaly, garbage)
    with pytest.raises(views.ViewError, match=r"^garbage\.bin: no GitLab log lines recognised; try --type$"):
        views.check_comparable(*sides)
    empty = ("empty.log", report_of(b""))
    views.check_comparable(empty, gitaly)  # an empty log has no type to differ
    views.check_comparable(gitaly, empty)


def test_logs_of_different_types_are_named(logs: Path) -> None:
    gitaly = ("a.log", report_of((logs / "gitaly.log").read_bytes()))
    sidekiq = ("b.log", report_of((logs / "sidekiq.log").read_bytes()))
    with pytest.raises(views.ViewError, match=r"^cannot compare gitaly \(a\.log\) with sidekiq \(b\.log\)$"):
        views.check_comparable(gitaly, sidekiq)
    views.check_comparable(gitaly, gitaly)


def test_compare_with_an_empty_file_says_it_is_empty(run: Run, logs: Path, tmp_path: Path) -> None:
    # As `outrider stats empty.log` does; not an error: before a change there may have been nothing.
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    gitaly = logs / "gitaly.log"
    result = run(empty, gitaly, "--format", "json", cmd="compare")
    assert result.stderr.startswith(f"A ({empty}): empty\n")
    doc = json.loads(result.stdout)
    both, in_a, in_b = doc["sections"]
    assert (doc["log_type"], both["rows"], in_a["rows"]) == ("gitaly", [], [])
    assert {r["key"] for r in in_b["rows"]} == {"FindCommit", "PostUploadPackWithSidechannel"}
    assert run(gitaly, empty, cmd="compare").stderr.startswith(f"B ({empty}): empty\n")


def test_compare_of_a_log_with_no_line_counted_is_an_error(run: Run, logs: Path, tmp_path: Path) -> None:
    # As the table: an empty comparison would read as "no requests", with exit 0.
    result = run(logs / "gitaly.log", logs / "gitaly.log", "--type", "sidekiq", cmd="compare", code=2)
    assert result.stdout == ""
    assert f"A ({logs / 'gitaly.log'}): sidekiq: no line counted" in result.stderr


def test_stdin_cannot_be_both_sides(run: Run, logs: Path) -> None:
    # It can be read once: B would be empty, and told of as though the log were.
    err = run("-", "-", cmd="compare", stdin=(logs / "api_json.log").read_bytes(), code=2).stderr
    assert err == "error: A and B cannot both be stdin ('-'), which can be read once; give one as a file or a pipe\n"


GITALY_CALL = '{"time":"2024-05-0%dT10:00:%02dZ","grpc.method":"FindCommit","grpc.code":"OK","grpc.time_ms":%s}\n'


@pytest.fixture
def a_with_bad_lines(tmp_path: Path) -> tuple[Path, Path]:
    """A: 4 calls on May 1st at 10:00:00-03 and 6 more whose time is "n/a"; B: 10 calls on May 2nd, 10:00:00-09."""
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    good = "".join(GITALY_CALL % (1, s, 10) for s in range(4))
    a.write_text(good + "".join(GITALY_CALL % (1, 10 + s, '"n/a"') for s in range(6)))
    b.write_text("".join(GITALY_CALL % (2, s, 20) for s in range(10)))
    return a, b


def test_each_logs_unusable_lines_are_told_by_side(run: Run, a_with_bad_lines: tuple[Path, Path]) -> None:
    # A's ΔCOUNT of +6 is A's 6 unusable lines, not traffic: stderr must say which log lost them.
    a, b = a_with_bad_lines
    err = run(a, b, cmd="compare").stderr
    assert err == f"A ({a}): gitaly: 6 of 10 lines could not be used (--verbose tells why)\n"
    err = run(b, a, cmd="compare").stderr
    assert err == f"B ({a}): gitaly: 6 of 10 lines could not be used (--verbose tells why)\n"
    verbose = run(a, b, "--verbose", cmd="compare").stderr.splitlines()
    assert f"A ({a}): log type: gitaly; 10 lines read" in verbose
    assert "  bad 6 lines: wrong type" in verbose
    assert f"B ({b}): log type: gitaly; 10 lines read" in verbose


def test_json_describes_both_logs(run: Run, a_with_bad_lines: tuple[Path, Path]) -> None:
    a, b = a_with_bad_lines
    doc = json.loads(run(a, b, "--format", "json", cmd="compare").stdout)
    assert list(doc) == ["log_type", "a", "b", "sections"]
    assert doc["log_type"] == "gitaly"
    assert doc["a"] == {
        "input": str(a),
        "lines": 10,
        "start": "2024-05-01T10:00:00Z",
        "end": "2024-05-01T10:00:03Z",  # the lines it could not use have no place in its span
        "bad_lines": {"wrong_type": 6},
        "skipped": {},
    }
    assert doc["b"] == {
        "input": str(b),
        "lines": 10,
        "start": "2024-05-02T10:00:00Z",
        "end": "2024-05-02T10:00:09Z",
        "bad_lines": {},
        "skipped": {},
    }


def test_count_deltas_are_whole_numbers(run: Run, a_with_bad_lines: tuple[Path, Path]) -> None:
    a, b = a_with_bad_lines
    both = sections(run(a, b, "--format", "json", cmd="compare"))[0]
    for row in [*both["rows"], both["totals"]]:
        assert (row["count_delta"], type(row["count_delta"])) == (6, int)
    table = list(csv.DictReader(io.StringIO(run(a, b, "--format", "csv", cmd="compare").stdout)))
    assert [(r["key"], r["count_a"], r["count_b"], r["count_delta"]) for r in table] == [
        ("FindCommit", "4", "10", "6"),
        ("TOTAL", "4", "10", "6"),
    ]
