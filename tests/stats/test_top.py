"""`outrider stats top`: resource use per user, project, client and path, as values and as shares of the totals."""

import json
from pathlib import Path

import pytest

from tests.stats.conftest import FORMATS, Run, rows_by_key, sections

# (file, dimension, {value: (count, total duration ms, failed)}, total duration ms), from the fixture lines.
CASES = [
    ("production_json", "user", {"alice": (3, 3300, 1), "bob": (2, 1200, 1), "(none)": (1, 1000, 0)}, 5500),
    ("api_json", "user", {"alice": (1, 1500, 0), "root": (2, 560, 1), "(none)": (2, 60, 0)}, 2120),
    # The client is remote_ip; the line with no username (c5) still names its address.
    ("production_json", "client", {"10.0.0.1": (3, 3300, 1), "10.0.0.2": (2, 1200, 1), "10.0.0.3": (1, 1000, 0)}, 5500),
    # runners/verify: 20 + 40 + 60 ms (a3's bare `duration` is in ms); projects/1 failed with a 502.
    (
        "api_json",
        "path",
        {"/api/v4/projects/2": (1, 1500, 0), "/api/v4/projects/1": (1, 500, 1), "/api/v4/runners/verify": (3, 120, 0)},
        2120,
    ),
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
            "rps_pct": pytest.approx(50.0),
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
    assert bob.split()[:4] == ["bob", "2", "0.03", "4.0s"]  # 2 calls over 60 s


def test_unknown_sort_field_is_an_error(run: Run, logs: Path) -> None:
    assert "unknown field" in run(logs / "gitaly.log", "--sort-by", "memory", cmd="top", code=2).stderr


def test_top_per_interval_takes_shares_of_each_window(run: Run, logs: Path) -> None:
    args = ("--interval", "1m", "--display", "both", "--format", "json")
    out = sections(run(logs / "sidekiq.log", *args, cmd="top"))
    users = {s["title"]: rows_by_key(s, "value") for s in out if "users" in s["title"]}
    first = users["2020-06-08T14:37:00Z Top 10 users by duration"]
    second = users["2020-06-08T14:38:00Z Top 10 users by duration"]
    # 14:37: root 500 + 1500 + 500 ms, alice's failed 2000 ms job; 14:38: alice's 1000 ms job alone.
    assert (first["root"]["count"], first["root"]["duration"]) == (3, pytest.approx(2500.0))
    # RPS over the window's 60 s, as in the stats table.
    assert (first["root"]["rps"], second["alice"]["rps"]) == pytest.approx((3 / 60, 1 / 60), abs=0.001)
    assert first["alice"]["duration_pct"] == pytest.approx(100 * 2000 / 4500, abs=0.001)
    assert (second["alice"]["count"], second["alice"]["duration_pct"]) == (1, pytest.approx(100.0))


@pytest.mark.parametrize(
    ("log", "sort_by", "carried"),
    [
        ("production_json", "queue", "count, rps, duration, db, gitaly, redis, cpu, failed"),
        ("sidekiq", "gitaly", "count, rps, duration, db, redis, cpu, queue, failed"),
        ("gitaly", "db", "count, rps, duration, cpu, failed"),
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
    assert err == (
        "error: this production_json log carries no cpu times to sort by; "
        "choose from count, rps, duration, db, failed\n"
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


# RPS and MEM: six requests of three users over 40 s, as lines of each format (tmp_path, so that the shared fixtures
# keep their numbers). (seconds after 10:00:00, user, duration in s, mem_bytes field if any)
MEM_LINES: list[tuple[int, str, float, dict[str, int | None]]] = [
    (0, "alice", 0.1, {"mem_bytes": 1 << 30}),
    (10, "bob", 1.0, {"mem_bytes": 1 << 28}),
    (20, "carol", 5.0, {}),
    (30, "alice", 0.1, {"mem_bytes": 1 << 29}),
    (35, "bob", 0.5, {"mem_bytes": 1 << 28}),
    (40, "bob", 1.0, {"mem_bytes": None}),
]
# value: (count, RPS = count / 40 s, mem bytes); alice 1 GiB + 512 MiB, bob 2 x 256 MiB, carol none logged.
MEM_EXPECTED = {"carol": (1, 1 / 40, 0), "bob": (3, 3 / 40, 1 << 29), "alice": (2, 2 / 40, 3 << 29)}
MEM_TOTAL = (6, 6 / 40, 1 << 31)


def request(log: str, user: str, seconds: float) -> dict[str, object]:
    """The fields that make a line a request of `log` by `user` that took `seconds`."""
    return {
        "production_json": {"controller": "A", "action": "x", "status": 200, "duration_s": seconds, "username": user},
        "api_json": {"route": "/api/:version/x", "status": 200, "duration_s": seconds, "username": user},
        "sidekiq": {"class": "W", "jid": "j", "job_status": "done", "duration_s": seconds, "meta.user": user},
        "gitaly": {"grpc.method": "A", "grpc.code": "OK", "grpc.time_ms": 1000 * seconds, "username": user},
    }[log]


def mem_log(tmp_path: Path, log: str) -> Path:
    """MEM_LINES as a `log` file."""
    path = tmp_path / f"{log}.log"
    lines = [
        json.dumps({"time": f"2024-05-01T10:00:{second:02d}Z", **request(log, user, seconds), **mem})
        for second, user, seconds, mem in MEM_LINES
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("log", FORMATS)
def test_rps_and_mem_per_user_and_in_total(run: Run, tmp_path: Path, log: str) -> None:
    path = mem_log(tmp_path, log)
    (users,) = sections(run(path, "--display", "both", "--format", "json", cmd="top"))
    assert [r["value"] for r in users["rows"]] == list(MEM_EXPECTED)  # by duration: carol 5 s, bob 2.5 s, alice 0.2 s
    total_count, total_rps, total_mem = MEM_TOTAL
    for value, (count, rps, mem) in MEM_EXPECTED.items():
        row = rows_by_key(users, "value")[value]
        assert (row["count"], row["rps"]) == (count, pytest.approx(rps))
        assert row["rps_pct"] == pytest.approx(100 * count / total_count, abs=0.001)
        if log == "gitaly":  # Gitaly logs no mem_bytes: no MEM column at all
            assert not {"mem", "mem_pct"} & row.keys()
        else:
            assert (row["mem"], row["mem_pct"]) == (mem, pytest.approx(100 * mem / total_mem, abs=0.001))
    totals = users["totals"]
    assert (totals["count"], totals["rps"], totals["rps_pct"]) == (total_count, pytest.approx(total_rps), 100.0)
    if log != "gitaly":
        assert (totals["mem"], totals["mem_pct"]) == (total_mem, 100.0)
    (table,) = sections(run(path, "--format", "json"))
    assert totals["rps"] == table["totals"]["rps"]  # the stats table's RPS, over the same span


@pytest.mark.parametrize(("log", "header"), [("sidekiq", "MEM"), ("gitaly", "FAIL_CT")])
def test_terminal_table_prints_rps_and_mem_in_binary_units(run: Run, tmp_path: Path, log: str, header: str) -> None:
    lines = run(mem_log(tmp_path, log), "--sort-by", "mem" if log == "sidekiq" else "rps", cmd="top").stdout
    rows = {line.split()[0]: line.split()[1:] for line in lines.splitlines()[2:] if line and line[0].isalpha()}
    assert lines.splitlines()[1].split()[:5] == ["USER", "COUNT", "RPS", "DUR", header]
    if log == "gitaly":
        assert (rows["alice"], rows["TOTAL"]) == (["2", "0.05", "200.0ms", "0"], ["6", "0.15", "7.7s", "0"])
    else:
        assert (rows["alice"], rows["TOTAL"]) == (
            ["2", "0.05", "200.0ms", "1.50", "GiB", "0"],
            ["6", "0.15", "7.7s", "2.00", "GiB", "0"],
        )
        assert (rows["bob"][-3:], rows["carol"][-3:]) == (["512.00", "MiB", "0"], ["0", "B", "0"])


def test_markdown_and_csv_carry_rps_and_mem(run: Run, tmp_path: Path) -> None:
    path = mem_log(tmp_path, "api_json")
    markdown = run(path, "--format", "markdown", cmd="top").stdout.splitlines()
    assert markdown[2] == "| USER | COUNT | RPS | DUR | MEM | FAIL_CT |"
    assert "| alice | 2 | 0.05 | 200.0ms | 1.50 GiB | 0 |" in markdown
    assert "| **TOTAL** | **6** | **0.15** | **7.7s** | **2.00 GiB** | **0** |" in markdown
    csv = run(path, "--format", "csv", "--display", "both", cmd="top").stdout.splitlines()
    assert csv[0] == "value,count,count_pct,rps,rps_pct,duration,duration_pct,mem,mem_pct,failed,failed_pct"
    assert "alice,2,33.333,0.05,33.333,200.0,2.597,1610612736,75.0,0," in csv  # raw bytes; no failures to share
    assert csv[-1] == "TOTAL,6,100.0,0.15,100.0,7700.0,100.0,2147483648,100.0,0,"


@pytest.mark.parametrize(("sort_by", "order"), [("rps", ["bob", "alice", "carol"]), ("mem", ["alice", "bob", "carol"])])
def test_sort_by_rps_and_mem_in_percentages(run: Run, tmp_path: Path, sort_by: str, order: list[str]) -> None:
    args = ("--sort-by", sort_by, "--display", "perc", "--format", "json")
    (users,) = sections(run(mem_log(tmp_path, "production_json"), *args, cmd="top"))
    assert users["title"] == f"Top 10 users by {sort_by}"
    assert [r["value"] for r in users["rows"]] == order
    # Shares of 6 requests (so also of 0.15 RPS), 7.7 s and 2 GiB; no failures to take a share of.
    assert rows_by_key(users, "value")["bob"] == {
        "value": "bob",
        "count_pct": 50.0,
        "rps_pct": 50.0,
        "duration_pct": pytest.approx(100 * 2.5 / 7.7, abs=0.001),
        "mem_pct": 25.0,
        "failed_pct": None,
    }


def test_sort_by_mem_on_gitaly_says_it_logs_none(run: Run, tmp_path: Path) -> None:
    err = run(mem_log(tmp_path, "gitaly"), "--sort-by", "mem-bytes", cmd="top", code=2).stderr
    assert err == "error: this gitaly log carries no mem_bytes to sort by; choose from count, rps, duration, failed\n"


def test_mem_summed_past_any_real_size_is_unknown_not_a_crash(run: Run, tmp_path: Path) -> None:
    log = tmp_path / "production_json.log"
    line = json.dumps({**request("production_json", "u", 0.1), "mem_bytes": 1e308})
    log.write_text(f"{line}\n{line}\n")  # 2e308 bytes in all: past what a float holds
    (users,) = sections(run(log, "--format", "json", cmd="top"))
    assert (users["rows"][0]["mem"], users["totals"]["mem"]) == (None, None)


def test_the_client_is_remote_ip_else_meta_remote_ip_else_meta_client_id(run: Run, tmp_path: Path) -> None:
    log = tmp_path / "production_json.log"
    named = [
        {"remote_ip": "10.0.0.1", "meta.remote_ip": "10.9.9.9", "meta.client_id": "user/1"},
        {"meta.remote_ip": "10.0.0.2", "meta.client_id": "user/2"},
        {"meta.client_id": "runner/3"},
        {},
    ]
    log.write_text("".join(json.dumps({**request("production_json", "u", 0.1), **ids}) + "\n" for ids in named))
    out = sections(run(log, "--format", "json", cmd="top"))
    (clients,) = [s for s in out if s["title"] == "Top 10 clients by duration"]
    assert sorted(r["value"] for r in clients["rows"]) == ["(none)", "10.0.0.1", "10.0.0.2", "runner/3"]
