"""`outrider engagements …` against a stand-in tracker that answers what a real one, a proxy or a wrong URL may: each
command ends with one line and an exit code, never a traceback; ids reach the tracker as one path segment."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from outrider import tracker_api, up
from outrider.cli import app
from outrider.devstack import free_port

EID = "3f2b6c1e-8d4a-4f7e-9a51-0c6e2d9b7a10"
runner = CliRunner()


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeTracker:
    """Answers every request with `answer`; keeps each request's method and path as sent (not decoded)."""

    url: str = ""
    answer: Answer = field(default_factory=lambda: Answer(200, b"[]"))
    requests: list[tuple[str, str]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)

    def answers(self, status: int, body: Any, content_type: str = "application/json", **headers: str) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answer = Answer(status, data, content_type, headers)


@pytest.fixture
def tracker() -> Iterator[FakeTracker]:
    fake = FakeTracker()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            fake.requests.append((self.command, self.requestline.split()[1]))  # `path` has leading `//` collapsed
            fake.authorizations.append(self.headers.get("Authorization"))
            a = fake.answer
            self.send_response(a.status)
            self.send_header("Content-Type", a.content_type)
            self.send_header("Content-Length", str(len(a.body)))
            for k, v in a.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(a.body)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


def outrider(tracker: str, *args: str) -> Result:
    return runner.invoke(app, ["engagements", *args, "--tracker", tracker, "--token", "t"])


def one_line(result: Result, code: int) -> str:
    """The command's only output line, after it exited with `code` of its own accord (not a traceback)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    (line,) = result.output.splitlines()
    return line


def test_a_redirect_names_where_the_tracker_is(tracker: FakeTracker) -> None:
    tracker.answers(301, b"", "text/html", Location="https://tracker.example.com/v1/engagements")
    line = one_line(outrider(tracker.url, "list"), 2)
    assert line == "301: the tracker redirected to https://tracker.example.com/v1/engagements; use that URL"


def test_a_page_that_is_not_json_names_its_status_and_start(tracker: FakeTracker) -> None:
    tracker.answers(200, b"<html><body>Sign in to continue</body></html>", "text/html")
    line = one_line(outrider(tracker.url, "list"), 2)
    assert line == "200 but not the tracker's answer (not JSON): '<html><body>Sign in to continue</body></html>'"


def test_an_error_labelled_json_that_is_not_says_its_status_and_start(tracker: FakeTracker) -> None:
    tracker.answers(500, b"Internal Server Error\n" + b"x" * 500)
    line = one_line(outrider(tracker.url, "status", EID), 1)
    assert line == f"500: 'Internal Server Error {'x' * 178}…'"


def test_a_refusal_whose_body_is_not_an_object_says_its_status_and_start(tracker: FakeTracker) -> None:
    tracker.answers(422, ["loc", "msg"])
    assert one_line(outrider(tracker.url, "list"), 1) == """422: '["loc", "msg"]'"""


def test_a_refusal_still_names_the_field_the_schema_refused(tracker: FakeTracker) -> None:
    tracker.answers(422, {"detail": [{"loc": ["body", "name"], "msg": "Field required"}]})
    assert one_line(outrider(tracker.url, "list"), 1) == "422: body.name: Field required"


@pytest.mark.parametrize("url", ["http://[::1", "127.0.0.1:8003", "ftp://127.0.0.1"])
def test_a_tracker_url_that_is_not_one_is_a_usage_error(tracker: FakeTracker, url: str) -> None:
    result = outrider(url, "list")
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--tracker'" in result.output
    assert "Traceback" not in result.output


def test_a_tracker_url_may_end_with_a_slash(tracker: FakeTracker) -> None:
    result = outrider(tracker.url + "//", "list")
    assert result.exit_code == 0, result.output
    assert tracker.requests == [("GET", "/v1/engagements?limit=100")]


def test_an_id_is_one_path_segment_whatever_it_holds(tracker: FakeTracker) -> None:
    tracker.answers(204, b"")
    result = outrider(tracker.url, "tokens", "revoke", EID, "../../../api-tokens/abcd")
    assert result.exit_code == 0, result.output
    assert tracker.requests == [("DELETE", f"/v1/engagements/{EID}/tokens/..%2F..%2F..%2Fapi-tokens%2Fabcd")]


@pytest.mark.parametrize(
    "args",
    [
        ["status", "../../portfolio"],
        ["tokens", "revoke", "not-an-engagement", "abcd"],
        ["touchpoints", "cancel", EID, "../../tokens/abcd", "--reason", "x"],
        ["risks", "set", EID, "r1", "--status", "closed"],
        ["issues", "resolve", EID, "i1", "done"],
        ["handoffs", "accept", EID, "h1"],
        ["tech-reviews", "decide", EID, "t1", "yes"],
        ["compare", EID, "..", "..", "--with", "pilot"],
    ],
)
def test_an_id_that_is_not_a_uuid_is_refused_before_the_tracker_is_asked(tracker: FakeTracker, args: list[str]) -> None:
    result = outrider(tracker.url, *args)
    assert result.exit_code == 2, result.output
    assert "is not an id (a UUID" in result.output
    assert tracker.requests == []


def test_names_are_printed_as_they_are_not_as_emoji(tracker: FakeTracker) -> None:
    engagement = {"id": EID, "customer": "Acme :thumbs_up: Corp", "name": "Pilot :x:", "playbook_id": "p",
                  "stage": "s", "status": "active"}  # fmt: skip
    tracker.answers(200, [engagement])
    result = outrider(tracker.url, "list")
    assert result.exit_code == 0, result.output
    assert "Acme :thumbs_up: Corp" in result.output
    assert "Pilot :x:" in result.output


@pytest.fixture
def local_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where `outrider up` keeps its state, empty (no stack up); and no tracker or token in the environment."""
    state = tmp_path / "outrider"
    state.mkdir()
    monkeypatch.setattr(up, "STATE", state)
    monkeypatch.setattr(tracker_api, "ADMIN_TOKEN_FILE", state / "admin-token")
    monkeypatch.delenv("OUTRIDER_TRACKER_URL", raising=False)
    monkeypatch.delenv("OUTRIDER_API_TOKEN", raising=False)
    return state


def stack_up(state: Path, tracker_port: int, admin_token: str = "otr_admin_local") -> None:
    """What `outrider up` leaves when its tracker listens on `tracker_port`."""
    up.Stack(19092, 15432, None, {"tracker": {"pid": 1, "port": tracker_port}}).save()
    (state / "admin-token").write_text(admin_token)


def test_the_default_tracker_is_the_one_up_started_with_its_admin_token(
    local_stack: Path, tracker: FakeTracker
) -> None:
    stack_up(local_stack, httpx.URL(tracker.url).port or 0)  # `up` found 8003 taken and chose another port
    result = runner.invoke(app, ["engagements", "list"])
    assert result.exit_code == 0, result.output
    assert tracker.authorizations == ["Bearer otr_admin_local"]


def test_without_a_stack_up_the_default_tracker_is_8003(local_stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
        asked.append(url)
        return httpx.Response(200, json=[], request=httpx.Request(method, url))

    monkeypatch.setattr(tracker_api.httpx, "request", request)
    assert runner.invoke(app, ["engagements", "list"]).exit_code == 0
    assert asked == ["http://127.0.0.1:8003/v1/engagements"]


def test_the_tracker_option_still_names_another_tracker(
    local_stack: Path, tracker: FakeTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_up(local_stack, free_port())
    monkeypatch.setenv("OUTRIDER_TRACKER_URL", tracker.url)
    assert runner.invoke(app, ["engagements", "list"]).exit_code == 0
    assert tracker.requests == [("GET", "/v1/engagements?limit=100")]


def test_the_local_stacks_admin_token_never_goes_to_another_program_on_8003(
    local_stack: Path, tracker: FakeTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`up` found 8003 held by another program and put the tracker elsewhere: that program gets no token."""
    stack_up(local_stack, free_port())
    assert runner.invoke(app, ["engagements", "list", "--tracker", tracker.url]).exit_code == 0
    assert tracker.authorizations == [None]


@pytest.mark.parametrize(
    ("url", "sent"),
    [("http://127.0.0.1:13818", True), ("http://127.0.0.1:13818/", True), ("http://127.0.0.1:8003", False),
     ("http://localhost:13818", False), ("http://[::1]:13818", False), ("https://127.0.0.1:13818", False),
     ("https://tracker.example.com", False), ("http://10.0.0.5:13818", False)],
)  # fmt: skip
def test_the_local_stacks_admin_token_goes_only_to_the_tracker_up_started(
    local_stack: Path, monkeypatch: pytest.MonkeyPatch, url: str, sent: bool
) -> None:
    stack_up(local_stack, 13818, "otr_admin_local\n")
    seen: list[dict[str, str]] = []

    def request(method: str, url: str, *, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
        seen.append(headers)
        return httpx.Response(200, json=[], request=httpx.Request(method, url))

    monkeypatch.setattr(tracker_api.httpx, "request", request)
    assert tracker_api.call("GET", f"{url.rstrip('/')}/v1/engagements", None) == []
    assert seen == [{"Authorization": "Bearer otr_admin_local"} if sent else {}]


def test_without_a_stack_up_no_admin_token_is_sent(local_stack: Path, tracker: FakeTracker) -> None:
    (local_stack / "admin-token").write_text("otr_admin_left_behind")  # e.g. an `up` killed before stack.json
    assert runner.invoke(app, ["engagements", "list", "--tracker", tracker.url]).exit_code == 0
    assert tracker.authorizations == [None]


@pytest.mark.parametrize(
    "token", ["otr_SECRET_TOKEN\r", "otr_SECRET_TOKEN ", " otr_SECRET_TOKEN\n", "\totr_SECRET_TOKEN"]
)
def test_a_token_is_sent_without_the_whitespace_around_it(
    local_stack: Path, tracker: FakeTracker, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    """A token read from a CRLF file, or pasted with a space, still works."""
    monkeypatch.setenv("OUTRIDER_API_TOKEN", token)
    result = runner.invoke(app, ["engagements", "list", "--tracker", tracker.url])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["engagements", "list", "--tracker", tracker.url, "--token", token]).exit_code == 0
    assert tracker.authorizations == ["Bearer otr_SECRET_TOKEN"] * 2


@pytest.mark.parametrize("token", ["otr_SECRET\r\nX-Other: 1", "otr_SECRET\x00", "otr_SECRÉT", "\r\n"])
def test_a_token_that_no_header_can_carry_is_refused_without_showing_it(
    local_stack: Path, tracker: FakeTracker, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    ways = [(["--token", token], {}), ([], {"OUTRIDER_API_TOKEN": token})] if "\x00" not in token else []
    for args, env in ways or [(["--token", token], {})]:  # no environment variable holds a NUL
        result = runner.invoke(app, ["engagements", "list", "--tracker", tracker.url, *args], env=env)
        assert result.exit_code == 2, result.output
        assert "Invalid value for '--token'" in result.output
        assert "SECRET" not in result.output
        assert "Traceback" not in result.output
    assert tracker.requests == []


def test_an_admin_token_file_no_header_can_carry_is_not_shown(local_stack: Path, tracker: FakeTracker) -> None:
    stack_up(local_stack, httpx.URL(tracker.url).port or 0, "otr_admin_SECRET\nX-Other: 1")
    line = one_line(runner.invoke(app, ["engagements", "list"]), 2)
    assert "SECRET" not in line
    assert "not a valid HTTP header value" in line
    assert tracker.requests == []
