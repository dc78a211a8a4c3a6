"""`outrider ship` as typed, against the local ingest stand-in: the short form, --once, the state file, help."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from outrider import up
from outrider.cli import app
from outrider.ship.checkpoint import held
from tests.ship.stub import ENGAGEMENT, Ingest, stopped_in_a_retry_wait

runner = CliRunner()
OUTRIDER = str(Path(sys.executable).parent / "outrider")


def test_the_short_form_ships_whole_lines_once_and_keeps_the_offset(ingest: Ingest, tmp_path: Path) -> None:
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    log.write_bytes(b'{"a":1}\n{"a":2}\npartial')
    args = ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--once", "--state", str(state)]
    result = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert result.exit_code == 0, result.output
    assert [body for _, _, body in ingest.requests] == [b'{"a":1}\n{"a":2}\n']
    assert "log_type=production_json" in ingest.requests[0][1]
    assert list(json.loads(state.read_text()).values()) == [16]

    again = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})  # nothing new: nothing sent
    assert again.exit_code == 0, again.output
    assert len(ingest.requests) == 1


def test_a_failure_with_once_exits_non_zero_and_keeps_the_checkpoint(ingest: Ingest, tmp_path: Path) -> None:
    log, state = tmp_path / "api_json.log", tmp_path / "state.json"
    log.write_bytes(b'{"a":1}\n')
    ingest.answers = [(403, None)]
    args = ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, "tail", str(log), "--once", "--state", str(state)]
    result = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert result.exit_code == 1
    assert "refused the token (403)" in result.output
    assert [entry["offset"] for entry in json.loads(state.read_text()).values()] == [0]  # only the range in flight


def test_help_needs_no_settings_and_never_shows_the_token() -> None:
    env = {"OUTRIDER_SHIP_TOKEN": "otr_do_not_print"}
    for args in (["ship", "--help"], ["ship", "tail", "--help"], ["ship", "bundle", "--help"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
        assert "otr_do_not_print" not in result.output


def test_missing_engagement_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ship", "--url", "http://127.0.0.1:9", str(tmp_path / "x.log"), "--once"], env={})
    assert result.exit_code == 2
    assert result.output.startswith("error: --engagement (or OUTRIDER_SHIP_ENGAGEMENT) and a token")


def test_following_picks_up_a_file_created_later_and_outlasts_refusals(ingest: Ingest, tmp_path: Path) -> None:
    ingest.answers = [(503, "0.1")] * 3
    env = {**os.environ, "OUTRIDER_SHIP_TOKEN": "otr_secret"}
    follower = subprocess.Popen(
        [OUTRIDER, "ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(tmp_path / "*.log"),
         "--interval", "0.1", "--state", str(tmp_path / "state.json")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        (tmp_path / "api_json.log").write_bytes(b'{"a":1}\n')  # after the start: the glob matched nothing then
        deadline = time.monotonic() + 30
        while not any(status == 202 for status in ingest.statuses):
            assert follower.poll() is None, follower.stderr.read() if follower.stderr else ""
            assert time.monotonic() < deadline, ingest.statuses
            time.sleep(0.05)
    finally:
        follower.send_signal(signal.SIGINT)
        follower.communicate(timeout=30)
    assert ingest.statuses == [503, 503, 503, 202]
    assert {body for _, _, body in ingest.requests} == {b'{"a":1}\n'}


def test_a_refused_file_stops_alone_and_once_exits_non_zero(ingest: Ingest, tmp_path: Path) -> None:
    long, fine = tmp_path / "a" / "production_json.log", tmp_path / "b" / "production_json.log"
    for log, line in ((long, b'{"long":1}\n'), (fine, b'{"ok":1}\n')):
        log.parent.mkdir()
        log.write_bytes(line)
    ingest.answers = [(413, None)]  # the first file's first request: a line over ingest's limit
    args = ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(long), str(fine), "--once",
            "--state", str(tmp_path / "state.json")]  # fmt: skip
    result = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert result.exit_code == 1
    assert "(413)" in result.output
    assert ingest.statuses == [413, 202]
    assert ingest.requests[1][2] == b'{"ok":1}\n'


def test_batch_bytes_bounds_each_request_for_a_proxy_in_front_of_ingest(ingest: Ingest, tmp_path: Path) -> None:
    log = tmp_path / "production_json.log"
    lines = [b'{"n":%d,"pad":"%s"}\n' % (i, b"p" * 100) for i in range(200)]  # ~24 KiB
    log.write_bytes(b"".join(lines))
    args = ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--once", "--batch-bytes", "4096",
            "--state", str(tmp_path / "state.json")]  # fmt: skip
    result = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert result.exit_code == 0, result.output
    bodies = [body for _, _, body in ingest.requests]
    assert len(bodies) > 5
    assert all(len(body) <= 4096 and body.endswith(b"\n") for body in bodies)
    assert b"".join(bodies) == b"".join(lines)

    log.write_bytes(b"".join(lines) * 2)  # more lines; now a proxy's body limit answers
    ingest.answers = [(413, None)]
    default = [arg for arg in args if arg not in ("--batch-bytes", "4096")]  # 8 MiB batches
    refused = runner.invoke(app, default, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert refused.exit_code == 1
    assert "--batch-bytes" in refused.output


def test_a_proxy_413_lets_the_next_run_cut_smaller_batches_and_ships_every_line_once(
    ingest: Ingest, tmp_path: Path
) -> None:
    # Doing what the 413's hint says must work: the refused range was never taken, so it need not be sent again as is.
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    content = b"".join(b'{"id":"%032x"}\n' % (i * 0x9E3779B97F4A7C15 % (1 << 128)) for i in range(2000))  # ~92 KB
    log.write_bytes(content)
    ingest.proxy_limit = 4096  # gzipped bytes; hex ids halve at best, so 64 KiB of lines is over it
    args = ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--once", "--state", str(state)]
    env = {"OUTRIDER_SHIP_TOKEN": "otr_secret"}
    refused = runner.invoke(app, [*args, "--batch-bytes", "65536"], env=env)
    assert refused.exit_code == 1
    assert "--batch-bytes" in refused.output
    assert (ingest.proxy_refused, ingest.requests) == (1, [])
    assert list(json.loads(state.read_text()).values()) == [0]  # nothing taken: no range left to resend as it was

    smaller = runner.invoke(app, [*args, "--batch-bytes", "4096"], env=env)
    assert smaller.exit_code == 0, smaller.output
    assert ingest.proxy_refused == 1
    assert b"".join(body for _, _, body in ingest.requests) == content
    assert list(json.loads(state.read_text()).values()) == [len(content)]


def test_what_ingest_took_before_refusing_a_line_is_not_sent_again(ingest: Ingest, tmp_path: Path) -> None:
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    log.write_bytes(b'{"a":1}\n{"a":2}\n{"too long":1}\n{"a":3}\n')
    ingest.answers = [(413, None)]
    ingest.reply = b'{"detail": "a line is longer than 4194304 bytes; lines before offset 16 were accepted"}'
    ingest.answer_headers = {"Outrider-Next-Offset": "16"}  # ingest took the first two lines
    args = ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--once", "--state", str(state)]
    result = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert result.exit_code == 1
    assert "(413)" in result.output
    assert "--batch-bytes" not in result.output  # ingest's own limit: no proxy to blame
    assert list(json.loads(state.read_text()).values()) == [16]  # resumes at the refused line, whatever the batch
    ingest.reply = None
    again = runner.invoke(app, [*args, "--batch-bytes", "4096"], env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert again.exit_code == 0, again.output
    assert ingest.requests[1][2] == b'{"too long":1}\n{"a":3}\n'
    assert "offset=16" in ingest.requests[1][1]


def test_a_second_shipper_on_the_same_state_file_is_refused_before_sending(ingest: Ingest, tmp_path: Path) -> None:
    # Each would save its own view of the offsets over the other's; after a restart lines would count twice.
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    log.write_bytes(b'{"a":1}\n')
    args = ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--once", "--state", str(state)]
    env = {**os.environ, "OUTRIDER_SHIP_TOKEN": "otr_secret"}
    with held(state):  # as a follower running elsewhere holds it
        second = subprocess.run([OUTRIDER, *args], env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2, second.stderr
    assert "another shipper is using this state file" in second.stdout + second.stderr
    assert ingest.requests == []
    assert not state.exists()
    after = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})  # the first one has stopped
    assert after.exit_code == 0, after.output
    assert [body for _, _, body in ingest.requests] == [b'{"a":1}\n']


def test_a_follower_ships_the_file_rotation_brings_after_a_refused_one(ingest: Ingest, tmp_path: Path) -> None:
    log = tmp_path / "production_json.log"
    log.write_bytes(b'{"long":1}\n')
    ingest.answers = [(413, None)]  # a line over ingest's limit: this file stops there
    env = {**os.environ, "OUTRIDER_SHIP_TOKEN": "otr_secret"}
    follower = subprocess.Popen(
        [OUTRIDER, "ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--interval", "0.1",
         "--state", str(tmp_path / "state.json")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while ingest.statuses != [413]:
            assert follower.poll() is None, ingest.statuses
            assert time.monotonic() < deadline, ingest.statuses
            time.sleep(0.05)
        log.rename(tmp_path / "production_json.log.1")  # logrotate; the application reopens its log
        log.write_bytes(b'{"ok":1}\n')
        while len(ingest.statuses) < 2:
            assert follower.poll() is None, ingest.statuses
            assert time.monotonic() < deadline, ingest.statuses
            time.sleep(0.05)
    finally:
        follower.send_signal(signal.SIGINT)
        output = follower.communicate(timeout=30)[0].decode()
    assert ingest.statuses == [413, 202]
    assert ingest.requests[1][2] == b'{"ok":1}\n'
    assert "a new file after rotation" in output


def test_a_shipper_killed_after_ingest_took_a_request_resends_exactly_that_range(
    ingest: Ingest, tmp_path: Path
) -> None:
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    before = b"".join(b'{"n":%d}\n' % i for i in range(1000))
    log.write_bytes(before)
    ingest.answering.clear()  # ingest hands the request to Kafka; the shipper is killed before it hears 202
    env = {**os.environ, "OUTRIDER_SHIP_TOKEN": "otr_secret"}
    follower = subprocess.Popen(
        [OUTRIDER, "ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--interval", "0.1",
         "--state", str(state)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ingest.requests:
            assert follower.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        follower.kill()
        follower.wait(timeout=30)
    ingest.answering.set()
    after = b"".join(b'{"n":%d}\n' % i for i in range(1000, 1500))
    with log.open("ab") as f:  # the file grows while the shipper is down
        f.write(after)

    args = ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--once", "--state", str(state)]
    result = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert result.exit_code == 0, result.output
    sent = [(int(parse_qs(urlsplit(path).query)["offset"][0]), body) for _, path, body in ingest.requests]
    assert sent == [(0, before), (0, before), (len(before), after)]
    assert list(json.loads(state.read_text()).values()) == [len(before) + len(after)]


def test_the_shared_options_may_follow_the_file_names(ingest: Ingest, tmp_path: Path) -> None:
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    log.write_bytes(b'{"a":1}\n')
    args = ["ship", str(log), "--once", "--engagement", ENGAGEMENT, f"--url={ingest.url}", "--state", str(state)]
    result = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert result.exit_code == 0, result.output
    assert [body for _, _, body in ingest.requests] == [b'{"a":1}\n']
    assert f"/v1/engagements/{ENGAGEMENT}/logs?" in ingest.requests[0][1]


def test_without_url_it_ships_to_the_ingest_up_started(
    ingest: Ingest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `up` found 8001 taken and chose another port, which it recorded in .outrider/stack.json.
    monkeypatch.setattr(up, "STATE", tmp_path)
    monkeypatch.delenv("OUTRIDER_SHIP_URL", raising=False)
    up.Stack(19092, 15432, None, {"ingest": {"pid": 1, "port": int(ingest.url.rsplit(":", 1)[1])}}).save()
    log = tmp_path / "production_json.log"
    log.write_bytes(b'{"a":1}\n')
    args = ["ship", "--engagement", ENGAGEMENT, str(log), "--once", "--state", str(tmp_path / "state.json")]
    result = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert result.exit_code == 0, result.output
    assert [body for _, _, body in ingest.requests] == [b'{"a":1}\n']


def test_a_202_with_an_offset_past_what_was_sent_advances_nothing(ingest: Ingest, tmp_path: Path) -> None:
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    log.write_bytes(b'{"a":1}\n{"a":2}\n')
    args = ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--once", "--state", str(state)]
    ingest.reply = b'{"next_offset": 4096}'  # a proxy's or a broken server's answer: lines 16 to 4096 never sent
    result = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert result.exit_code == 1
    assert "next_offset 4096, outside the 0 to 16 sent" in result.output
    assert [entry["offset"] for entry in json.loads(state.read_text()).values()] == [0]  # only the range in flight

    ingest.reply = None
    again = runner.invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert again.exit_code == 0, again.output
    assert [body for _, _, body in ingest.requests] == [b'{"a":1}\n{"a":2}\n'] * 2
    assert list(json.loads(state.read_text()).values()) == [16]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_request_ends_a_follower_at_once_even_in_a_retry_wait_and_the_next_run_resends_the_batch(
    ingest: Ingest, tmp_path: Path, stop: signal.Signals
) -> None:
    """Stopped (systemd's SIGTERM, Ctrl-C), the follower ends after the batch in hand and says what it shipped: a
    signal inside an HTTP call or a screen update could leave a lock held and hang its exit, and SIGTERM killed it
    without the final table."""
    log, state = tmp_path / "api_json.log", tmp_path / "state.json"
    log.write_bytes(b'{"a":1}\n')
    ingest.answers = [(503, "60")]  # busy: come back in a minute
    args = ["--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--interval", "0.1", "--state", str(state)]
    took, code, err = stopped_in_a_retry_wait(ingest, args, stop)
    assert took < 10  # not the 60 s ingest asked for
    assert code == 0, err
    assert str(log) in err  # the final table
    assert ingest.statuses == [503]
    assert [entry["offset"] for entry in json.loads(state.read_text()).values()] == [0]  # the range in flight
    again = subprocess.run(
        [OUTRIDER, "ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--once", "--state", str(state)],
        env={**os.environ, "OUTRIDER_SHIP_TOKEN": "otr_secret"}, capture_output=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr.decode()
    assert ingest.statuses == [503, 202]
    assert [body for _, _, body in ingest.requests] == [b'{"a":1}\n', b'{"a":1}\n']
    assert list(json.loads(state.read_text()).values()) == [8]
