"""Mistakes in how `outrider ship` is run end at once in one line, exit 2 and send nothing; secrets never show."""

import gzip
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from outrider.cli import app
from outrider.ship import cli
from tests.ship.stub import ENGAGEMENT, Ingest

runner = CliRunner()
OUTRIDER = str(Path(sys.executable).parent / "outrider")
TOKEN = "otr_k3pT-secret_Vx9"


def ship(url: str, *args: str, token: str = TOKEN, engagement: str = ENGAGEMENT) -> Result:
    return runner.invoke(
        app, ["ship", "--engagement", engagement, "--url", url, *args], env={"OUTRIDER_SHIP_TOKEN": token}
    )


def one_line_error(result: Result) -> str:
    """The whole output, checked to be a single line and not a traceback."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "production_json.log"
    path.write_bytes(b'{"a":1}\n')
    return path


def closed_port() -> int:
    """A loopback port nothing listens on (taken from the kernel, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(40)  # before: ten tries over two to three minutes
def test_tail_once_gives_up_on_an_unreachable_ingest_within_seconds_naming_its_url(log: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    result = ship(url, str(log), "--once", "--state", str(tmp_path / "s.json"))
    took = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert took < 15, result.output
    assert f"ingest not reachable at {url}" in result.output
    assert "gave up on" in result.output
    assert "tries over" in result.output
    assert [entry["offset"] for entry in json.loads((tmp_path / "s.json").read_text()).values()] == [0]  # in flight


@pytest.mark.timeout(20)  # before: ten tries over about two minutes
def test_a_token_read_with_its_trailing_newline_is_used_without_it(ingest: Ingest, log: Path, tmp_path: Path) -> None:
    result = ship(ingest.url, "tail", str(log), "--once", "--state", str(tmp_path / "s.json"), token=f" {TOKEN}\n")
    assert result.exit_code == 0, result.output
    assert ingest.authorizations == [f"Bearer {TOKEN}"]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("token", [f"{TOKEN}\nX-Other: 1", "otr_k3pT secret", "otr_k3pTé"])
def test_a_token_no_header_can_carry_fails_at_once_and_is_never_shown(
    ingest: Ingest, log: Path, tmp_path: Path, token: str
) -> None:
    error = one_line_error(
        ship(ingest.url, "tail", str(log), "--once", "--state", str(tmp_path / "s.json"), token=token)
    )
    assert "token" in error
    assert "k3pT" not in error
    assert ingest.requests == []


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("notaurl", "http:// or https://"),
        ("localhost:8001", "http:// or https://"),
        ("ftp://ingest.example.com", "http:// or https://"),
        ("http://", "no host"),
        ("https://ingest.example.com/?x=1", "query"),
        ("http://user:s3cr3t@", "no host"),
    ],
)
def test_an_unusable_url_fails_at_once(log: Path, tmp_path: Path, url: str, why: str) -> None:
    error = one_line_error(ship(url, "tail", str(log), "--once", "--state", str(tmp_path / "s.json")))
    assert "--url" in error
    assert why in error
    assert "s3cr3t" not in error


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--engagement", "nope"], "'nope' is not an engagement id"),
        (["--engagement", ENGAGEMENT, "--source", ""], "--source"),
        (["--engagement", ENGAGEMENT, "--source", "h" * 201], "--source"),
    ],
)
def test_malformed_settings_are_refused_before_anything_is_sent(
    ingest: Ingest, log: Path, tmp_path: Path, args: list[str], says: str
) -> None:
    for command in (["tail", str(log), "--once", "--state", str(tmp_path / "s.json")], ["bundle", str(log.parent)]):
        result = runner.invoke(app, ["ship", "--url", ingest.url, *args, *command], env={"OUTRIDER_SHIP_TOKEN": TOKEN})
        assert says in one_line_error(result)
    assert ingest.requests == []


def test_an_engagement_id_is_sent_in_its_canonical_form(ingest: Ingest, log: Path, tmp_path: Path) -> None:
    result = ship(ingest.url, str(log), "--once", "--state", str(tmp_path / "s.json"), engagement=ENGAGEMENT.upper())
    assert result.exit_code == 0, result.output
    assert ingest.requests[0][1].startswith(f"/v1/engagements/{ENGAGEMENT}/logs?")


def test_tail_of_a_directory_names_it_and_says_what_to_do(ingest: Ingest, tmp_path: Path) -> None:
    error = one_line_error(ship(ingest.url, "tail", str(tmp_path), "--once", "--state", str(tmp_path / "s.json")))
    assert error.startswith(f"error: {tmp_path}: is a directory")
    assert "bundle" in error
    assert ingest.requests == []


def test_tail_of_a_compressed_file_points_to_bundle(ingest: Ingest, log: Path, tmp_path: Path) -> None:
    gz = tmp_path / "production_json.log.1.gz"
    gz.write_bytes(gzip.compress(b'{"a":1}\n'))
    for args in (["tail", str(gz), "--once"], ["tail", str(log), str(gz)]):  # following cannot ship it either
        error = one_line_error(ship(ingest.url, *args, "--state", str(tmp_path / "s.json")))
        assert error.startswith(f"error: {gz}: compressed")
        assert f"outrider ship bundle {gz}" in error
    assert ingest.requests == []


def test_tail_once_of_a_file_that_does_not_exist_is_an_error(ingest: Ingest, log: Path, tmp_path: Path) -> None:
    missing = tmp_path / "api_json.log"
    error = one_line_error(ship(ingest.url, str(log), str(missing), "--once", "--state", str(tmp_path / "s.json")))
    assert error == f"error: {missing}: no such file"
    assert ingest.requests == []  # checked before the files that exist are sent


def test_tail_once_when_no_pattern_matches_a_file_says_which_and_ships_nothing(ingest: Ingest, tmp_path: Path) -> None:
    patterns = [str(tmp_path / "nothing-*.log"), str(tmp_path / "gitaly" / "*")]
    (tmp_path / "dir.log").mkdir()  # a glob that matches only a directory matches no file either
    patterns.append(str(tmp_path / "dir*.log"))
    error = one_line_error(ship(ingest.url, *patterns, "--once", "--state", str(tmp_path / "s.json")))
    quoted = ", ".join(f"'{p}'" for p in patterns)  # as the shell would need them
    assert (
        error == f"error: nothing to ship: no file matches {quoted}; check the paths (quote a glob so the shell "
        "passes it on as it is)"
    )
    assert ingest.requests == []


def test_tail_once_of_a_glob_that_matches_nothing_warns(ingest: Ingest, log: Path, tmp_path: Path) -> None:
    pattern = str(tmp_path / "nothing-*.log")
    result = ship(ingest.url, str(log), pattern, "--once", "--state", str(tmp_path / "s.json"))
    assert result.exit_code == 0, result.output
    assert f"{pattern} matches no file" in result.output
    assert len(ingest.requests) == 1


def test_following_a_named_file_that_does_not_exist_yet_warns_and_waits_for_it(ingest: Ingest, tmp_path: Path) -> None:
    log, err = tmp_path / "api_json.log", tmp_path / "stderr"
    warning = f"{log}: no such file yet; waiting for it"
    with err.open("wb") as stderr:
        follower = subprocess.Popen(
            [OUTRIDER, "ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--interval", "0.1",
             "--state", str(tmp_path / "state.json")],
            env={**os.environ, "OUTRIDER_SHIP_TOKEN": TOKEN}, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        # The file must come after the shipper looked and found nothing (its start-up takes a while on a busy CI).
        while warning not in err.read_text():
            assert follower.poll() is None, err.read_text()
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        log.write_bytes(b'{"a":1}\n')
        while not ingest.statuses:
            assert follower.poll() is None, err.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=30)
    assert [body for _, _, body in ingest.requests] == [b'{"a":1}\n']


@pytest.mark.parametrize(
    ("content", "why"), [(b'{"broken', "not JSON"), (b"[]", "not a map of file ids to offsets"), (b"", "not JSON")]
)
def test_a_corrupt_state_file_is_kept_and_says_how_to_recover(
    ingest: Ingest, log: Path, tmp_path: Path, content: bytes, why: str
) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(content)
    error = one_line_error(ship(ingest.url, "tail", str(log), "--once", "--state", str(state)))
    assert error.startswith(f"error: {state}: corrupt state file ({why}")
    assert "move it aside" in error
    assert state.read_bytes() == content  # it records what was sent: never replaced behind the user's back
    assert ingest.requests == []


def test_a_state_file_that_cannot_be_read_says_why(ingest: Ingest, log: Path, tmp_path: Path) -> None:
    error = one_line_error(ship(ingest.url, "tail", str(log), "--once", "--state", str(tmp_path)))
    assert error == f"error: {tmp_path}: cannot read the state file: is a directory"


def test_bundle_of_one_gzip_log_ships_it(ingest: Ingest, tmp_path: Path) -> None:
    gz = tmp_path / "production_json.log.2.gz"
    gz.write_bytes(gzip.compress(b'{"a":1}\n{"a":2}\n'))
    result = ship(ingest.url, "bundle", str(gz))
    assert result.exit_code == 0, result.output
    assert [body for _, _, body in ingest.requests] == [b'{"a":1}\n{"a":2}\n']
    assert "log_type=production_json" in ingest.requests[0][1]


def truncated_tar_gz(path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = os.urandom(64 << 10)  # incompressible, so a cut lands inside the member
        info = tarfile.TarInfo("var/log/gitlab/gitlab-rails/production_json.log")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


@pytest.mark.parametrize(
    ("name", "write", "why"),
    [
        ("notes.txt", lambda p: p.write_bytes(b"plain text\n"), "not a directory, a tar archive or a gzip file"),
        ("small.log.gz", lambda p: p.write_bytes(gzip.compress(b'{"a":1}\n' * 100)[:-10]), "cut short"),
        ("bundle.tar.gz", truncated_tar_gz, "cut short"),
    ],
)
def test_bundle_of_a_file_it_cannot_read_says_what_is_wrong(
    ingest: Ingest, tmp_path: Path, name: str, write: Callable[[Path], object], why: str
) -> None:
    path = tmp_path / name
    write(path)
    error = one_line_error(ship(ingest.url, "bundle", str(path)))
    assert error.startswith(f"error: {path}: ")
    assert why in error
    assert ingest.requests == []


def test_once_with_no_files_named_and_no_omnibus_logs_is_an_error(
    ingest: Ingest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "OMNIBUS", [str(tmp_path / "gitlab-rails" / "production_json.log")])
    error = one_line_error(ship(ingest.url, "--once", "--state", str(tmp_path / "s.json")))
    assert error.startswith("error: nothing to ship: none of the Omnibus GitLab logs exist")
    assert "name the files to ship" in error
    assert ingest.requests == []


@pytest.mark.parametrize(
    "url", ["http://ingest.example.com", "http://10.0.0.5:8001", "http://user:s3cr3t@[2001:db8::1]"]
)
def test_plain_http_to_another_host_is_refused_since_the_token_would_travel_in_clear(
    log: Path, tmp_path: Path, url: str
) -> None:
    for command in (["tail", str(log), "--once", "--state", str(tmp_path / "s.json")], ["bundle", str(log.parent)]):
        error = one_line_error(ship(url, *command))
        assert "--url" in error
        assert "unencrypted" in error
        assert "--allow-http" in error
        assert "s3cr3t" not in error


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8001", "http://127.3.2.1", "http://[::1]:8001", "http://localhost:8001", "https://x.io"]
)
def test_plain_http_to_this_host_or_https_anywhere_is_accepted(url: str) -> None:
    assert cli._url_problem(url) is None
    assert cli._url_problem("http://ingest.example.com", allow_http=True) is None


def test_allow_http_sends_to_another_host_over_plain_http(
    ingest: Ingest, log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_loopback", lambda host: False)  # the stand-in's 127.0.0.1 taken for another host
    assert "unencrypted" in one_line_error(ship(ingest.url, str(log), "--once", "--state", str(tmp_path / "s.json")))
    assert ingest.requests == []
    # Wherever it is given, as the other shared options: a flag takes no value from what follows it.
    result = ship(ingest.url, str(log), "--allow-http", "--once", "--state", str(tmp_path / "s.json"))
    assert result.exit_code == 0, result.output
    assert [body for _, _, body in ingest.requests] == [log.read_bytes()]
    log.write_bytes(log.read_bytes() + b'{"a":2}\n')
    result = runner.invoke(
        app, ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, str(log), "--once", "--state",
              str(tmp_path / "s.json")],
        env={"OUTRIDER_SHIP_TOKEN": TOKEN, "OUTRIDER_SHIP_ALLOW_HTTP": "1"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(ingest.requests) == 2


def test_the_help_says_allow_http_sends_the_token_unencrypted() -> None:
    result = runner.invoke(app, ["ship", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--allow-http" in result.output
    assert "unencrypted" in result.output
