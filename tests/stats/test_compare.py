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


@pytest.mark.parametrize("empty_first", [True, False])
def test_a_side_without_gitlab_lines_is_named(logs: Path, empty_first: bool) -> None:
    gitaly = ("gitaly.log", report_of((logs / "gitaly.log").read_bytes()))
    empty = ("empty.log", report_of(b""))
    sides = (empty, gitaly) if empty_first else (gitaly, empty)
    with pytest.raises(views.ViewError, match=r"^empty\.log: no GitLab log lines recognised; try --type$"):
        views.check_comparable(*sides)


def test_logs_of_different_types_are_named(logs: Path) -> None:
    gitaly = ("a.log", report_of((logs / "gitaly.log").read_bytes()))
    sidekiq = ("b.log", report_of((logs / "sidekiq.log").read_bytes()))
    with pytest.raises(views.ViewError, match=r"^cannot compare gitaly \(a\.log\) with sidekiq \(b\.log\)$"):
        views.check_comparable(gitaly, sidekiq)
    views.check_comparable(gitaly, gitaly)


def test_compare_with_an_empty_file_names_it(run: Run, logs: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    err = run(empty, logs / "gitaly.log", cmd="compare", code=2).stderr
    assert err == f"error: {empty}: no GitLab log lines recognised; try --type\n"


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
        "start": "2024-05-01 10:00:00",
        "end": "2024-05-01 10:00:03",  # the lines it could not use have no place in its span
        "bad_lines": {"wrong_type": 6},
        "skipped": {},
    }
    assert doc["b"] == {
        "input": str(b),
        "lines": 10,
        "start": "2024-05-02 10:00:00",
        "end": "2024-05-02 10:00:09",
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
