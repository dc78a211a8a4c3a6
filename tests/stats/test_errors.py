"""`outrider stats errors`: failures by status and exception, gRPC code or Sidekiq error class."""

import json
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
    starts = [w.replace(" ", "T") + "Z" for w in windows]  # in time order
    assert [(s["title"], s["start"]) for s in errors] == [(w, w) for w in starts]
    assert [(s["title"], s["start"]) for s in events] == [(f"{w} Events", w) for w in starts]
    for section, event_section, expected in zip(errors, events, windows.values(), strict=True):
        assert set(rows_by_key(section, "error")) == expected
        assert all(r["count"] == 1 for r in section["rows"])
        assert {e["error"] for e in event_section["rows"]} == expected
        assert section["notes"] == [f"1 failed or raising request in {len(expected)} group{'s' * (len(expected) != 1)}"]


def test_events_are_the_earliest_by_time_ties_in_input_order(run: Run, tmp_path: Path) -> None:
    # (correlation id, second of 10:00) in input order; None has no time.
    lines = [("c0", None), ("c1", 9), ("c2", 8), ("c3", 7), ("c4", 3), ("c5", 6), ("c6", 3), ("c7", 2), ("c8", 5)]
    log = tmp_path / "production_json.log"
    log.write_text(
        "".join(
            json.dumps(
                {"controller": "E", "action": "a", "status": 500, "duration_s": 0.1, "correlation_id": cid}
                | ({} if s is None else {"time": f"2024-05-01T10:00:{s:02d}Z"})
            )
            + "\n"
            for cid, s in lines
        )
    )
    summary, events = sections(run(log, "--format", "json", cmd="errors"))
    assert summary["rows"][0]["first"] == "2024-05-01 10:00:02"
    assert '"correlation_id": "c7"' in summary["rows"][0]["sample"]  # the sample is the FIRST line too
    # The five earliest, sorted: 02 c7, 03 c4 and c6 (as they came), 05 c8, 06 c5.
    assert [(e["correlation_id"], e["time"][-2:]) for e in events["rows"]] == [
        ("c7", "02"),
        ("c4", "03"),
        ("c6", "03"),
        ("c8", "05"),
        ("c5", "06"),
    ]


def test_sidekiq_failures_are_named_by_exception_class_since_12_5(run: Run, tmp_path: Path) -> None:
    # GitLab 12.5 replaced `error_class` with `exception.class` on Sidekiq's fail lines.
    line = '{"time":"2024-05-01T10:00:00Z","class":"W","job_status":"fail","duration_s":1,%s}\n'
    log = tmp_path / "current"
    fields = ['"exception.class":"Gitlab::Git::CommandError"', '"exception.class":"ActiveRecord::QueryCanceled"']
    fields.append('"error_class":"OldError"')
    log.write_text("".join(line % f for f in fields))
    (section, *_) = sections(run(log, "--type", "sidekiq", "--format", "json", cmd="errors"))
    expected = {"Gitlab::Git::CommandError", "ActiveRecord::QueryCanceled", "OldError"}
    assert set(rows_by_key(section, "error")) == expected
