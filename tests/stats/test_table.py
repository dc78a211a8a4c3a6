"""The default per-key table on all four formats, against hand-computed numbers.

Percentiles are linear interpolation at rank p*(n-1); STDDEV is the population one; RPS divides by the time
span of the whole input (60 s in every fixture); SCORE = COUNT * P99.
"""

import pytest

from tests.stats.conftest import Run, rows_by_key, sections


def approx(**expected: float) -> dict[str, object]:
    return {k: pytest.approx(v, abs=0.001) for k, v in expected.items()}


def pick(row: dict[str, object], expected: dict[str, object]) -> dict[str, object]:
    return {k: row[k] for k in expected}


# durations 100, 200, 400, 800 ms (the 800 from the pre-13.0 `duration` in ms); 1 of 4 has status 500.
ISSUES = approx(
    count=4, rps=4 / 60, p99=400 + 0.97 * 400, p95=400 + 0.85 * 400, median=300, max=800, min=100,
    stddev=268.095, score=4 * 788, perc_failed=25.0, db=460 / 4, gitaly=80 / 4, redis=15 / 4, cpu=250 / 4,
)  # fmt: skip
# 1000 and 3000 ms; the 3000 has status 503.
BLOB = approx(
    count=2, rps=2 / 60, p99=1000 + 0.99 * 2000, p95=1000 + 0.95 * 2000, median=2000, max=3000, min=1000,
    stddev=1000, score=2 * 2980, perc_failed=50.0, db=300 / 2, gitaly=3100 / 2, cpu=700 / 2,
)  # fmt: skip
# 100, 200, 400, 800, 1000, 3000: p99 at rank 4.95, median at rank 2.5.
PRODUCTION_TOTAL = approx(count=6, p99=1000 + 0.95 * 2000, median=600, max=3000, min=100, perc_failed=100 / 3)


def test_production_json(run: Run, logs: object) -> None:
    out = sections(run(f"{logs}/production_json.log", "--format", "json"))
    (table,) = out
    rows = rows_by_key(table)
    assert [r["key"] for r in table["rows"]] == ["Projects::BlobController#show", "Projects::IssuesController#show"]
    assert pick(rows["Projects::IssuesController#show"], ISSUES) == ISSUES
    assert pick(rows["Projects::BlobController#show"], BLOB) == BLOB
    assert pick(table["totals"], PRODUCTION_TOTAL) == PRODUCTION_TOTAL


def test_api_json_groups_by_method_and_route(run: Run, logs: object) -> None:
    (table,) = sections(run(f"{logs}/api_json.log", "--format", "json"))
    rows = rows_by_key(table)
    # 20, 40 ms (seconds schema) and 60 ms (ms schema); Helm-wrapped and KubeSOS-prefixed lines count too.
    verify = approx(count=3, median=40, p95=40 + 0.9 * 20, p99=40 + 0.98 * 20, stddev=16.330, perc_failed=0, db=20 / 3)
    projects = approx(count=2, median=1000, p99=1490, min=500, max=1500, perc_failed=50.0, db=300 / 2)
    assert pick(rows["POST /api/:version/runners/verify"], verify) == verify
    assert pick(rows["GET /api/:version/projects/:id"], projects) == projects
    assert table["totals"]["count"] == 5  # the production_json subcomponent line is not an API request


def test_gitaly_groups_by_grpc_method(run: Run, logs: object) -> None:
    (table,) = sections(run(f"{logs}/gitaly.log", "--format", "json"))
    rows = rows_by_key(table)
    # 2, 4, 9 ms, the 9 ms one NotFound; non-call lines (the logfmt one has no grpc.code) do not count.
    find = approx(count=3, median=4, p95=4 + 0.9 * 5, p99=4 + 0.98 * 5, stddev=2.944, perc_failed=100 / 3, cpu=1 / 3)
    pack = approx(count=2, median=2000, p99=2980, perc_failed=50.0, cpu=2000 / 2, score=2 * 2980)
    assert pick(rows["FindCommit"], find) == find
    assert pick(rows["PostUploadPackWithSidechannel"], pack) == pack
    assert list(rows) == ["PostUploadPackWithSidechannel", "FindCommit"]


def test_sidekiq_counts_done_and_fail_not_start(run: Run, logs: object) -> None:
    (table,) = sections(run(f"{logs}/sidekiq.log", "--format", "json"))
    rows = rows_by_key(table)
    # 500 ms (duration_s) and 1500 ms (the old `duration`, in seconds for Sidekiq).
    admin = approx(count=2, median=1000, stddev=500, perc_failed=0, db=60 / 2, queue=1 / 2, cpu=300 / 2)
    # 2000 (fail), 1000, 500 ms; scheduling latency 500 and 250 ms.
    post = approx(count=3, median=1000, p95=1900, p99=1980, stddev=623.610, perc_failed=100 / 3, queue=750 / 3)
    assert pick(rows["AdminEmailsWorker"], admin) == admin
    assert pick(rows["PostReceive"], post) == post


def test_print_fields_sort_and_limit(run: Run, logs: object) -> None:
    args = ("--print-fields", "count,median", "--sort-by", "median", "--limit", "1", "--format", "json")
    (table,) = sections(run(f"{logs}/sidekiq.log", *args))
    # Both workers have median 1000 ms: the tie breaks by name.
    assert table["rows"] == [{"key": "AdminEmailsWorker", "count": 2, "median": 1000.0}]
    assert table["totals"] == {"key": "TOTAL", "count": 5, "median": 1000.0}


def test_fields_are_also_named_as_the_table_heads_them(run: Run, logs: object) -> None:
    args = ("--print-fields", "COUNT,QUEUE_AVG_ms", "--sort-by", "QUEUE_AVG_ms", "--limit", "1", "--format", "json")
    (table,) = sections(run(f"{logs}/sidekiq.log", *args))
    assert table["rows"] == [{"key": "PostReceive", "count": 3, "queue": pytest.approx(250)}]


def test_terminal_table_has_fast_stats_headers_and_totals(run: Run, logs: object) -> None:
    out = run(f"{logs}/gitaly.log").stdout
    header = out.splitlines()[0].split()
    assert header[:11] == [
        "METHOD", "COUNT", "RPS", "P99_ms", "P95_ms", "MEDIAN_ms", "MAX_ms", "MIN_ms", "STDDEV", "SCORE", "%FAIL",
    ]  # fmt: skip
    assert "FindCommit" in out
    assert out.strip().splitlines()[-1].split()[:2] == ["TOTAL", "5"]


@pytest.mark.parametrize("bad", [["--sort-by", "nonsense"], ["--print-fields", "count,bogus"], ["--type", "nginx"]])
def test_bad_options_exit_2_with_a_message(run: Run, logs: object, bad: list[str]) -> None:
    result = run(f"{logs}/gitaly.log", *bad, code=2)
    assert "error:" in result.stderr


@pytest.mark.parametrize("log", ["production_json", "api_json", "gitaly", "sidekiq"])
def test_approximate_percentiles_are_within_one_percent(run: Run, logs: object, log: str) -> None:
    (exact,) = sections(run(f"{logs}/{log}.log", "--format", "json"))
    (approx,) = sections(run(f"{logs}/{log}.log", "--format", "json", "--approximate"))
    for key, row in rows_by_key(exact).items():
        other = rows_by_key(approx)[key]
        assert other["count"] == row["count"]
        for field in ("p99", "p95", "median"):
            assert other[field] == pytest.approx(row[field], rel=0.01)


def test_gitaly_text_format_logfmt(run: Run, logs: object) -> None:
    """Gitaly's old text (logfmt) lines, svlogd prefix or not: read as their JSON twins would be."""
    result = run(f"{logs}/gitaly_text.log", "--format", "json")
    (table,) = sections(result)
    rows = rows_by_key(table)
    assert [r["key"] for r in table["rows"]] == ["FindCommit", "PostUploadPack"]  # by score: 4 x 39.7 beats 100.5
    # 10, 30, 20, 40 ms; the 20 ms one answered NotFound. Span 17:20:00 - 17:21:00 = 60 s.
    find_commit = approx(count=4, rps=4 / 60, p99=30 + 0.97 * 10, median=25, max=40, min=10, perc_failed=25.0)
    assert pick(rows["FindCommit"], find_commit) == find_commit
    upload = approx(count=1, max=100.5, min=100.5, perc_failed=0.0)
    assert pick(rows["PostUploadPack"], upload) == upload
    # The panic line is bad; the HTTP line is skipped, not bad.
    assert "gitaly: 1 of 7 lines could not be used" in result.stderr


def test_gitaly_text_format_auto_detected_and_in_errors(run: Run, logs: object) -> None:
    errors, events = sections(run(f"{logs}/gitaly_text.log", "--format", "json", cmd="errors"))
    (row,) = errors["rows"]
    assert (row["error"], row["count"], row["key"]) == ("NotFound", 1, "FindCommit")
    assert events["rows"][0]["project"] == 'root/with "quotes"'
