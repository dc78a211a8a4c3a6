"""`outrider stats errors`: failures by status and exception, gRPC code or Sidekiq error class."""

from pathlib import Path

import pytest

from tests.stats.conftest import Run, rows_by_key, sections

CASES = [
    (
        "production_json",
        {
            "500 ActiveRecord::QueryCanceled": ("Projects::IssuesController#show", "2024-05-01 10:00:20"),
            "503": ("Projects::BlobController#show", "2024-05-01 10:01:00"),
        },
    ),
    ("api_json", {"502": ("GET /api/:version/projects/:id", "2023-11-23 08:49:30")}),
    (
        "gitaly",
        {
            "Internal": ("PostUploadPackWithSidechannel", "2019-09-17 22:18:00"),
            "NotFound": ("FindCommit", "2019-09-17 22:17:20"),
        },
    ),
    ("sidekiq", {"Gitlab::Git::CommandError": ("PostReceive", "2020-06-08 14:37:20")}),
]


@pytest.mark.parametrize(("log", "expected"), CASES)
def test_errors_on_every_format(run: Run, logs: Path, log: str, expected: dict[str, tuple[str, str]]) -> None:
    section, _ = sections(run(logs / f"{log}.log", "--format", "json", cmd="errors"))
    rows = rows_by_key(section, "error")
    assert set(rows) == set(expected)
    for error, (key, first) in expected.items():
        assert (rows[error]["count"], rows[error]["key"], rows[error]["first"]) == (1, key, first)
        assert rows[error]["sample"].startswith(("{", "2"))  # the raw line, svlogd prefix included


def test_sample_shows_the_failing_line(run: Run, logs: Path) -> None:
    section, _ = sections(run(logs / "gitaly.log", "--format", "json", cmd="errors"))
    assert "pack-objects died" in rows_by_key(section, "error")["Internal"]["sample"]


def test_events_list_time_correlation_key_user_and_project(run: Run, logs: Path) -> None:
    _, events = sections(run(logs / "production_json.log", "--format", "json", cmd="errors"))
    assert events["rows"] == [
        {
            "error": "500 ActiveRecord::QueryCanceled",
            "time": "2024-05-01 10:00:20",
            "correlation_id": "c3",
            "key": "Projects::IssuesController#show",
            "user": "bob",
            "project": "g/p2",
        },
        {
            "error": "503",
            "time": "2024-05-01 10:01:00",
            "correlation_id": "c6",
            "key": "Projects::BlobController#show",
            "user": "alice",
            "project": "g/p1",
        },
    ]


def test_table_lists_counts_and_a_summary(run: Run, logs: Path) -> None:
    out = run(logs / "production_json.log", cmd="errors").stdout
    assert "500 ActiveRecord::QueryCanceled" in out
    assert "2 failed or raising requests in 2 groups" in out


@pytest.mark.parametrize(
    ("log", "windows"),
    [
        (
            "production_json",
            {"2024-05-01 10:00:00": {"500 ActiveRecord::QueryCanceled"}, "2024-05-01 10:01:00": {"503"}},
        ),
        ("gitaly", {"2019-09-17 22:17:00": {"NotFound"}, "2019-09-17 22:18:00": {"Internal"}}),
    ],
)
def test_interval_gives_the_tables_per_window(run: Run, logs: Path, log: str, windows: dict[str, set[str]]) -> None:
    found = sections(run(logs / f"{log}.log", "--interval", "1m", "--format", "json", cmd="errors"))
    errors, events = found[0::2], found[1::2]
    assert [s["title"] for s in errors] == [f">>> {w} <<<" for w in windows]  # in time order
    assert [s["title"] for s in events] == [f">>> {w} <<< Events" for w in windows]
    for section, event_section, expected in zip(errors, events, windows.values(), strict=True):
        assert set(rows_by_key(section, "error")) == expected
        assert all(r["count"] == 1 for r in section["rows"])
        assert {e["error"] for e in event_section["rows"]} == expected
        assert section["notes"] == [f"1 failed or raising requests in {len(expected)} groups"]
