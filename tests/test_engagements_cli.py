"""`outrider engagements …` against a real tracker."""

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.stack import as_admin, running_services, write_findings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
OUTRIDER = str(Path(sys.executable).parent / "outrider")


def run(*args: str, tracker: str, token: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OUTRIDER, "engagements", *args, "--tracker", tracker], capture_output=True, text=True,
        env={"OUTRIDER_API_TOKEN": token},  # piped: no terminal width to fit
    )  # fmt: skip


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
        assert "Initech [EMEA] · Pilot" in status.stdout
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
    down = run("list", tracker=tracker)
    assert down.returncode == 2
    assert "tracker not reachable" in down.stdout
