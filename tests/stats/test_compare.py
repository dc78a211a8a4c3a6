"""`outrider stats compare A B`: per-key A, B and delta, and the keys only one side has."""

from pathlib import Path

import pytest

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
    assert in_a["title"] == "Only in A (1 keys)"


def test_keys_only_in_b(run: Run, logs: Path, tmp_path: Path) -> None:
    head = tmp_path / "head.log"
    head.write_bytes(b"".join((logs / "gitaly.log").read_bytes().splitlines(keepends=True)[:2]))
    _, in_a, in_b = sections(run(head, logs / "gitaly.log", "--format", "json", cmd="compare"))
    assert (in_a["rows"], [r["key"] for r in in_b["rows"]]) == ([], ["PostUploadPackWithSidechannel"])


def test_different_log_types_cannot_be_compared(run: Run, logs: Path) -> None:
    result = run(logs / "gitaly.log", logs / "sidekiq.log", cmd="compare", code=2)
    assert "cannot compare" in result.stderr
