"""`outrider engagements …`: options refused before the tracker is asked; then against a real tracker."""

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from outrider import engagements
from outrider.cli import app
from tests.stack import as_admin, running_services, write_findings

OUTRIDER = str(Path(sys.executable).parent / "outrider")
EID = "3f2b6c1e-8d4a-4f7e-9a51-0c6e2d9b7a10"
runner = CliRunner()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The tracker calls a command made (none are answered: each test sets what its command needs)."""
    made: list[tuple[str, str]] = []

    def call(method: str, url: str, token: str | None, **kwargs: Any) -> Any:
        made.append((method, url))
        raise AssertionError(f"unexpected tracker call {method} {url}")

    monkeypatch.setattr(engagements, "call", call)
    return made


def usage_error(args: list[str]) -> str:
    """The error of a command refused as a usage error (exit 2), its box and wrapping undone."""
    result = runner.invoke(app, ["engagements", *args])
    assert result.exit_code == 2, result.output
    return " ".join(result.output.replace("│", " ").split())


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["list", "--limit", "0"], "greater than or equal to 1"),
        (["findings", EID, "--limit", "0"], "greater than or equal to 1"),
        (["findings", EID, "--limit", "1001"], "less than or equal to 1000"),
    ],
)
def test_a_limit_outside_what_the_tracker_pages_is_a_usage_error(
    calls: list[tuple[str, str]], args: list[str], why: str
) -> None:
    error = usage_error(args)
    assert f"Invalid value for '--limit': Input should be {why}" in error
    assert calls == []


def test_an_unknown_rule_is_a_usage_error_that_lists_the_rules(calls: list[tuple[str, str]]) -> None:
    error = usage_error(["findings", EID, "--rule", "bogus"])
    assert "Invalid value for '--rule'" in error
    assert "'bogus' is not one of 'slow_endpoint', 'error_spike', 'slow_gitaly', 'sidekiq_latency'" in error
    assert calls == []


def test_a_known_rule_is_sent_to_the_tracker(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []

    def call(method: str, url: str, token: str | None, **kwargs: Any) -> Any:
        sent.append(kwargs["params"])
        return {"findings": [], "total": 0}

    monkeypatch.setattr(engagements, "call", call)
    result = runner.invoke(app, ["engagements", "findings", EID, "--rule", "slow_gitaly", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert sent == [{"rule": "slow_gitaly", "limit": 1}]


STATUS: dict[str, Any] = {
    "engagement": {"id": EID, "customer": "Initech", "name": "Pilot", "status": "active"},
    "playbook": "AI assistant rollout",
    "stage": {"name": "Pilot", "days_in_stage": 2.0, "expected_days": 14, "stalled": False},
    "health": 100,
    "health_reasons": [],
    "checklist": [],
    "blocking": [],
    "requests_counted": 0,
    "top_keys": [],
    "next_touchpoint": None,
    "overdue_touchpoints": [],
    "open_risks": [],
    "open_issues": [],
}


@pytest.mark.parametrize(("state", "shown"), [("active", None), ("paused", "PAUSED"), ("closed", "CLOSED")])
def test_status_says_in_its_first_line_when_an_engagement_is_not_active(
    monkeypatch: pytest.MonkeyPatch, state: str, shown: str | None
) -> None:
    answer = {**STATUS, "engagement": {**STATUS["engagement"], "status": state}}
    monkeypatch.setattr(engagements, "call", lambda *args, **kwargs: answer)
    result = runner.invoke(app, ["engagements", "status", EID])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first == "Initech · Pilot · AI assistant rollout" + ("" if shown is None else f" · {shown}")


def test_status_says_which_log_types_an_automatic_item_still_waits_for(monkeypatch: pytest.MonkeyPatch) -> None:
    item = {"id": "logs_received", "title": "Logs received", "auto": "logs_received", "done": False,
            "satisfied_by": None, "done_by": None, "missing": ["gitaly", "sidekiq"]}  # fmt: skip
    monkeypatch.setattr(engagements, "call", lambda *args, **kwargs: {**STATUS, "checklist": [item]})
    result = runner.invoke(app, ["engagements", "status", EID], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Logs received │ no logs yet of gitaly, sidekiq" in result.output


# Stored before the parser replaced control characters in keys.
STORED_KEY = "X\x1b]8;;https://evil.example\x1b\\Users\x1b]8;;\x1b\\#show\n\x9b2J"


@pytest.mark.parametrize("command", ["status", "findings"])
def test_a_stored_key_with_control_characters_is_printed_without_them(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    top = {"key": STORED_KEY, "count": 3, "p99_ms": 1.0, "perc_failed": 0.0, "score": 3.0}
    finding = {"window_start": "2024-05-01T10:00:00Z", "rule": "slow_endpoint", "log_type": "production_json",
               "key": STORED_KEY, "figures": {"p99_ms": 8123}}  # fmt: skip
    answer = {
        "status": {**STATUS, "requests_counted": 3, "top_keys": [top]},
        "findings": {"findings": [finding], "total": 1},
    }[command]
    monkeypatch.setattr(engagements, "call", lambda *args, **kwargs: answer)
    result = runner.invoke(app, ["engagements", command, EID], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", result.output), repr(result.output)
    assert "X\ufffd]8;;https://evil.example\ufffd\\Users\ufffd]8;;\ufffd\\#show\ufffd\ufffd2J" in result.output


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_stats_prints_a_stored_key_without_control_characters_nor_as_a_formula(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    figures = {api: 1.0 for api in engagements.API_FIELDS.values()}
    keys = [{**figures, "key": STORED_KEY}, {**figures, "key": '=HYPERLINK("http://evil","x")'}]
    page = {"keys": keys, "key_count": 2, "totals": [{**figures, "key": "TOTAL"}], "span_seconds": 60.0}
    monkeypatch.setattr(engagements, "call", lambda *args, **kwargs: page)
    result = runner.invoke(app, ["engagements", "stats", EID, "--log-type", "production_json", "--format", fmt])
    assert result.exit_code == 0, result.output
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", result.output), repr(result.output)
    assert "evil.example\ufffd\\Users" in result.output
    if fmt == "csv":
        assert '"\'=HYPERLINK(""http://evil"",""x"")"' in result.output


def run(*args: str, tracker: str, token: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OUTRIDER, "engagements", *args, "--tracker", tracker], capture_output=True, text=True,
        env={"OUTRIDER_API_TOKEN": token},  # piped: no terminal width to fit
    )  # fmt: skip


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
def test_list_status_advance_portfolio_and_findings(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker",)
    ) as svc:
        tracker = svc["tracker"].url
        # Brackets in a name are text, not rich markup (they vanished, and `[/]` crashed the command).
        body = {"name": "Pilot", "customer": "Initech [EMEA]", "playbook_id": "ai-assistant-rollout"}
        eid = as_admin.post(f"{tracker}/v1/engagements", json=body).json()["id"]
        viewer, editor = (
            as_admin.post(f"{tracker}/v1/api-tokens", json={"name": role, "role": role}).json()["token"]
            for role in ("viewer", "editor")
        )

        assert "401: an API token is required" in run("list", tracker=tracker).stdout
        listed = run("list", "--playbook", "ai-assistant-rollout", tracker=tracker, token=viewer)
        assert listed.returncode == 0, listed.stderr
        assert "Initech [EMEA]" in listed.stdout
        assert eid in listed.stdout  # whole, to paste into `status ID`
        assert "pilot" in listed.stdout

        assert (
            "403: viewer has role viewer; POST needs editor"
            in run("advance", eid, tracker=tracker, token=viewer).stdout
        )
        refused = run("advance", eid, tracker=tracker, token=editor)
        assert refused.returncode == 1
        assert "409" in refused.stdout
        assert "missing: Onboarding: network access and proxies confirmed" in refused.stdout

        forced = run("advance", eid, "--force", "--reason", "sponsor decision", tracker=tracker, token=editor)
        assert forced.returncode == 0, forced.stdout
        assert "pilot → limited (forced)" in forced.stdout

        status = run("status", eid, tracker=tracker, token=viewer)
        header = "Initech [EMEA] · Pilot · AI coding assistant rollout"  # active: nothing more
        assert status.stdout.splitlines()[0] == header, status.stdout
        assert "Limited rollout (100 users)" in status.stdout
        assert "Health: 100/100" in status.stdout
        assert "Blocking the next stage: 100 users active; Usage and acceptance reviewed" in status.stdout

        portfolio = run("portfolio", tracker=tracker, token=viewer)
        assert "ai-assistant-rollout" in portfolio.stdout
        assert "Overdue touchpoints: 0" in portfolio.stdout

        write_findings(database_dsn, eid, [
            ("slow_endpoint", "Projects::IssuesController#index", datetime(2024, 5, 1, 10, 7, tzinfo=UTC),
             {"p99_ms": 8123, "limit_ms": 1000}),
            ("error_spike", "Chat::CompletionsController#create", datetime(2024, 5, 1, 10, 9, tzinfo=UTC),
             {"rate": 0.25, "limit": 0.05}),
        ])  # fmt: skip
        listed_findings = run("findings", eid, tracker=tracker, token=viewer)
        assert listed_findings.returncode == 0, listed_findings.stderr
        assert "2 of 2 findings" in listed_findings.stdout
        assert "2024-05-01 10:07" in listed_findings.stdout
        assert "p99_ms 8123, limit_ms 1000" in listed_findings.stdout
        spikes = run("findings", eid, "--rule", "error_spike", tracker=tracker, token=viewer).stdout
        assert "1 of 1 findings" in spikes
        assert "Chat::CompletionsController#create" in spikes
        assert "Projects::IssuesController#index" not in spikes

        version = as_admin.get(f"{tracker}/v1/engagements/{eid}").json()["version"]
        closed = as_admin.patch(f"{tracker}/v1/engagements/{eid}", json={"version": version, "status": "closed"})
        assert closed.status_code == 200, closed.text
        status = run("status", eid, tracker=tracker, token=viewer)
        assert status.stdout.splitlines()[0] == f"{header} · CLOSED", status.stdout
    down = run("list", tracker=tracker)
    assert down.returncode == 2
    assert "tracker not reachable" in down.stdout
