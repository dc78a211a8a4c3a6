"""Output formats: csv, markdown and the terminal table carry the same numbers as json."""

import csv
import io
from pathlib import Path

from tests.stats.conftest import Run


def test_csv_has_a_header_rows_and_totals(run: Run, logs: Path) -> None:
    out = run(logs / "gitaly.log", "--format", "csv", "--print-fields", "count,median,perc_failed").stdout
    assert list(csv.reader(io.StringIO(out))) == [
        ["key", "count", "median", "perc_failed"],
        ["PostUploadPackWithSidechannel", "2", "2000.0", "50.0"],
        ["FindCommit", "3", "4.0", "33.333"],
        ["TOTAL", "5", "9.0", "40.0"],
    ]


def test_csv_with_intervals_has_the_windows_in_iso_8601(run: Run, logs: Path) -> None:
    # Data, not fast-stats' `>>> 2019-09-17 22:18:00 <<<` heading: a spreadsheet or pandas reads these as times.
    out = run(logs / "gitaly.log", "--format", "csv", "--print-fields", "count", "--interval", "1m").stdout
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["section", "start", "end", "key", "count"]
    assert rows[-1] == ["2019-09-17T22:18:00Z", "2019-09-17T22:18:00Z", "2019-09-17T22:19:00Z", "TOTAL", "1"]
    assert "<<<" not in out


def test_markdown_table(run: Run, logs: Path) -> None:
    out = run(logs / "sidekiq.log", "--format", "markdown", "--print-fields", "count,p99").stdout
    assert out.splitlines() == [
        "| WORKER | COUNT | P99_ms |",
        "|---|---:|---:|",
        "| PostReceive | 3 | 1980.0 |",
        "| AdminEmailsWorker | 2 | 1490.0 |",
        "| **TOTAL** | **5** | **1980.0** |",
    ]


def test_terminal_table_rounds_like_fast_stats(run: Run, logs: Path) -> None:
    out = run(logs / "sidekiq.log", "--print-fields", "count,rps,p99,perc_failed").stdout
    post = next(line for line in out.splitlines() if line.startswith("PostReceive"))
    # 3 jobs over 60 s; P99 1980.0 ms; 1 of 3 failed.
    assert post.split() == ["PostReceive", "3", "0.05", "1980.0", "33.33"]


def test_markdown_of_several_log_types_heads_each_table(run: Run, logs: Path) -> None:
    # Back to back, GitHub would render the second table's header as rows of the first.
    out = run(logs / "production_json.log", logs / "gitaly.log", "--format", "markdown").stdout
    lines = out.splitlines()
    assert lines[:2] == ["## production_json", ""]
    second = lines.index("## gitaly")
    assert lines[second - 2].startswith("| **TOTAL** |")
    assert (lines[second - 1], lines[second + 1], lines[second + 2]) == (
        "",
        "",
        "| METHOD | COUNT | RPS | P99_ms "
        "| P95_ms | MEDIAN_ms | MAX_ms | MIN_ms "
        "| STDDEV | SCORE | %FAIL | CPU_AVG_ms |",
    )
