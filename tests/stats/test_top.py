"""`outrider stats top`: resource use per user and project, as values and as shares of the totals."""

from pathlib import Path

import pytest

from tests.stats.conftest import Run, rows_by_key, sections

# (file, dimension, {value: (count, total duration ms, failed)}, total duration ms), from the fixture lines.
CASES = [
    ("production_json", "user", {"alice": (3, 3300, 1), "bob": (2, 1200, 1), "(none)": (1, 1000, 0)}, 5500),
    ("api_json", "user", {"alice": (1, 1500, 0), "root": (2, 560, 1), "(none)": (2, 60, 0)}, 2120),
    ("gitaly", "project", {"root/big": (2, 4000, 1), "root/linux": (3, 15, 1)}, 4015),
    ("sidekiq", "project", {"g/q": (2, 3000, 1), "(none)": (1, 1500, 0), "g/p": (2, 1000, 0)}, 5500),
]


@pytest.mark.parametrize(("log", "dimension", "expected", "total"), CASES)
def test_top_by_duration_on_every_format(
    run: Run, logs: Path, log: str, dimension: str, expected: dict[str, tuple[int, float, int]], total: float
) -> None:
    out = sections(run(logs / f"{log}.log", "--format", "json", "--display", "both", cmd="top"))
    (section,) = [s for s in out if s["title"] == f"Top 10 {dimension}s by duration"]
    rows = rows_by_key(section, "value")
    assert [r["value"] for r in section["rows"]] == list(expected)  # largest total duration first
    for value, (count, duration, failed) in expected.items():
        row = rows[value]
        assert (row["count"], row["failed"]) == (count, failed)
        assert row["duration"] == pytest.approx(duration)
        assert row["duration_pct"] == pytest.approx(100 * duration / total, abs=0.001)
    assert section["totals"]["duration"] == pytest.approx(total)


def test_sort_by_cpu_and_percentage_display(run: Run, logs: Path) -> None:
    args = ("--sort-by", "cpu-s", "--display", "percentage", "--limit", "1", "--format", "json")
    out = sections(run(logs / "production_json.log", *args, cmd="top"))
    users = out[0]
    # CPU: alice 50 + 100 + 400 ms of 950 ms in all; percentages only.
    assert users["rows"] == [
        {
            "value": "alice",
            "count_pct": pytest.approx(50.0),
            "duration_pct": pytest.approx(60.0),
            "db_pct": pytest.approx(100 * 260 / 760, abs=0.001),
            "gitaly_pct": pytest.approx(100 * 2530 / 3180, abs=0.001),
            "redis_pct": pytest.approx(100.0),
            "cpu_pct": pytest.approx(100 * 550 / 950, abs=0.001),
            "failed_pct": pytest.approx(50.0),
        }
    ]


def test_terminal_output_humanizes_durations(run: Run, logs: Path) -> None:
    out = run(logs / "gitaly.log", cmd="top").stdout
    assert "Top 10 users by duration" in out
    bob = next(line for line in out.splitlines() if line.startswith("bob"))
    assert bob.split()[:3] == ["bob", "2", "4.0s"]


def test_unknown_sort_field_is_an_error(run: Run, logs: Path) -> None:
    assert "unknown field" in run(logs / "gitaly.log", "--sort-by", "memory", cmd="top", code=2).stderr


def test_top_per_interval_takes_shares_of_each_window(run: Run, logs: Path) -> None:
    args = ("--interval", "1m", "--display", "both", "--format", "json")
    out = sections(run(logs / "sidekiq.log", *args, cmd="top"))
    users = {s["title"]: rows_by_key(s, "value") for s in out if "users" in s["title"]}
    first = users[">>> 2020-06-08 14:37:00 <<< Top 10 users by duration"]
    second = users[">>> 2020-06-08 14:38:00 <<< Top 10 users by duration"]
    # 14:37: root 500 + 1500 + 500 ms, alice's failed 2000 ms job; 14:38: alice's 1000 ms job alone.
    assert (first["root"]["count"], first["root"]["duration"]) == (3, pytest.approx(2500.0))
    assert first["alice"]["duration_pct"] == pytest.approx(100 * 2000 / 4500, abs=0.001)
    assert (second["alice"]["count"], second["alice"]["duration_pct"]) == (1, pytest.approx(100.0))


@pytest.mark.parametrize(
    ("log", "sort_by", "carried"),
    [
        ("production_json", "queue", "count, duration, db, gitaly, redis, cpu, failed"),
        ("sidekiq", "gitaly", "count, duration, db, redis, cpu, queue, failed"),
        ("gitaly", "db", "count, duration, cpu, failed"),
    ],
)
def test_sort_by_a_component_the_log_lacks_names_the_ones_it_has(
    run: Run, logs: Path, log: str, sort_by: str, carried: str
) -> None:
    err = run(logs / f"{log}.log", "--sort-by", sort_by, cmd="top", code=2).stderr
    assert err == f"error: this {log} log carries no {sort_by} times to sort by; choose from {carried}\n"


def test_sort_by_cpu_s_on_a_log_without_cpu_is_a_usage_error(run: Run, tmp_path: Path) -> None:
    log = tmp_path / "production_json.log"
    log.write_text(
        '{"time":"2024-05-01T10:00:00Z","controller":"A","action":"x","status":200,"duration_s":0.1,'
        '"db_duration_s":0.01,"username":"u1"}\n'
    )
    err = run(log, "--sort-by", "cpu-s", cmd="top", code=2).stderr
    assert (
        err
        == "error: this production_json log carries no cpu times to sort by; choose from count, duration, db, failed\n"
    )


def test_perc_is_percentage_as_in_greenhat(run: Run, logs: Path) -> None:
    args = ("--display", "perc", "--format", "json")
    perc = sections(run(logs / "production_json.log", *args, cmd="top"))
    percentage = sections(run(logs / "production_json.log", "--display", "percentage", "--format", "json", cmd="top"))
    assert perc == percentage
    assert set(perc[0]["rows"][0]) >= {"count_pct", "duration_pct"}
    assert "count" not in perc[0]["rows"][0]


def test_requests_that_name_no_one_say_so(run: Run, tmp_path: Path) -> None:
    log = tmp_path / "anonymous.log"
    log.write_text('{"time":"2024-05-01T10:00:00Z","controller":"A","action":"b","status":200,"duration_s":0.1}\n')
    result = run(log, cmd="top")
    assert result.stdout == "no user, project, client or path named in these production_json lines\n"
