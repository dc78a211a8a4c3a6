"""`--interval`: the same table per time window, with RPS over the window's length."""

import json
from pathlib import Path

import pytest

from tests.stats.conftest import Run, sections

# Per one-minute window: {key: count}, from the fixtures' timestamps.
CASES = [
    (
        "production_json",
        "2024-05-01T10:00:00Z",
        {"Projects::IssuesController#show": 4, "Projects::BlobController#show": 1},
        {"Projects::BlobController#show": 1},
    ),
    (
        "api_json",
        "2023-11-23T08:49:00Z",
        {"POST /api/:version/runners/verify": 3, "GET /api/:version/projects/:id": 1},
        {"GET /api/:version/projects/:id": 1},
    ),
    (
        "gitaly",
        "2019-09-17T22:17:00Z",
        {"FindCommit": 3, "PostUploadPackWithSidechannel": 1},
        {"PostUploadPackWithSidechannel": 1},
    ),
    (
        "sidekiq",
        "2020-06-08T14:37:00Z",
        {"AdminEmailsWorker": 2, "PostReceive": 2},
        {"PostReceive": 1},
    ),
]


@pytest.mark.parametrize(("log", "first_title", "first", "second"), CASES)
def test_one_minute_windows_on_every_format(
    run: Run, logs: Path, log: str, first_title: str, first: dict[str, int], second: dict[str, int]
) -> None:
    one, two = sections(run(logs / f"{log}.log", "--interval", "1m", "--format", "json"))
    assert one["title"] == one["start"] == first_title
    assert one["end"] == two["start"]  # a minute later
    assert {r["key"]: r["count"] for r in one["rows"]} == first
    assert {r["key"]: r["count"] for r in two["rows"]} == second
    assert one["totals"]["count"] == sum(first.values())
    assert one["totals"]["rps"] == pytest.approx(sum(first.values()) / 60, abs=0.001)


def test_window_percentiles(run: Run, logs: Path) -> None:
    one, two = sections(run(logs / "production_json.log", "--interval", "1m", "--format", "json"))
    blob_first = next(r for r in one["rows"] if r["key"] == "Projects::BlobController#show")
    blob_second = two["rows"][0]
    assert (blob_first["p99"], blob_second["p99"]) == (pytest.approx(1000.0), pytest.approx(3000.0))


def test_hour_window_is_one_table(run: Run, logs: Path) -> None:
    (only,) = sections(run(logs / "gitaly.log", "--interval", "1h", "--format", "json"))
    assert (only["title"], only["start"], only["end"]) == ("2019-09-17T22:00:00Z",) * 2 + ("2019-09-17T23:00:00Z",)


@pytest.mark.parametrize("bad", ["0m", "ten minutes", "5w"])
def test_bad_interval_is_an_error(run: Run, logs: Path, bad: str) -> None:
    assert "invalid interval" in run(logs / "gitaly.log", "--interval", bad, code=2).stderr


@pytest.mark.parametrize("long", ["366d", "99999999999999999999d"])
def test_an_interval_over_a_year_is_an_error(run: Run, logs: Path, long: str) -> None:
    # Windows start at multiples of the interval since 1970: a longer one would start with the untimed window.
    assert "longer than a year" in run(logs / "gitaly.log", "--interval", long, code=2).stderr


# Two timed lines in the 10:00 hour, then three without a usable time: null, missing, unparsable; all failed.
NO_TIME_LINES = [
    '{"time":"2024-05-01T10:00:00Z","controller":"D","action":"a","status":500,"duration_s":0.1,"username":"u"}',
    '{"time":"2024-05-01T10:30:00Z","controller":"D","action":"a","status":500,"duration_s":0.1,"username":"u"}',
    '{"time":null,"controller":"D","action":"a","status":500,"duration_s":0.1,"username":"u"}',
    '{"controller":"D","action":"a","status":500,"duration_s":0.1,"username":"u"}',
    '{"time":"garbage","controller":"D","action":"a","status":500,"duration_s":0.1,"username":"u"}',
]


WINDOW = ("2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")


@pytest.fixture
def no_time_log(tmp_path: Path) -> Path:
    log = tmp_path / "production_json.log"
    log.write_text("\n".join(NO_TIME_LINES) + "\n")
    return log


def test_lines_without_time_get_a_last_window_of_their_own(run: Run, no_time_log: Path) -> None:
    doc = json.loads(run(no_time_log, "--interval", "1h", "--format", "json").stdout)
    timed, untimed = doc["sections"]
    assert (timed["title"], timed["start"], timed["end"]) == ("2024-05-01T10:00:00Z", *WINDOW)
    assert timed["totals"]["count"] == 2
    assert (untimed["title"], untimed["start"], untimed["end"]) == ("(no time)", None, None)
    assert untimed["totals"]["count"] == 2  # null, or no time at all
    assert doc["bad_lines"] == {"bad_time": 1}  # "garbage": a time, unreadable
    assert untimed["totals"]["rps"] is None  # no time span to take a rate over


@pytest.mark.parametrize("cmd", ["table", "top", "errors"])
def test_no_view_shows_a_1970_window(run: Run, no_time_log: Path, cmd: str) -> None:
    out = run(no_time_log, "--interval", "1h", cmd=cmd).stdout
    assert "1970" not in out
    assert ">>> (no time) <<<" in out
    assert out.index(">>> 2024-05-01 10:00:00 <<<") < out.index(">>> (no time) <<<")
