"""The Prometheus alert rules: valid, unit-tested with promtool; rules and dashboards only query exported metrics."""

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

import outrider_notifier.metrics  # noqa: F401  (registers the notifier's metrics)
from tests.ops.test_dashboards import metric_names
from tests.stack import running_services

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool missing: scripts/bootstrap.sh installs Debian's prometheus package"
    return subprocess.run([tool, *args], cwd=RULES, capture_output=True, text=True, timeout=60)


def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", "outrider-rules.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout
    tested = promtool("test", "rules", "outrider-rules.test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
def test_every_metric_a_rule_or_dashboard_queries_is_exported(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    text = (RULES / "outrider-rules.yaml").read_text()
    wanted = set(re.findall(r"\b(outrider_[a-z_]+)\b", text))
    # A name matcher in the outbox rule stands for both producers' gauges.
    wanted |= {"outrider_tracker_outbox_pending", "outrider_analyzer_outbox_pending"}
    wanted = {w for w in wanted if not w.endswith("_")} | metric_names()
    with running_services(kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path) as svc:
        exported = {
            line.split()[2]
            for service in svc.values()
            for line in httpx.get(f"{service.url}/metrics").text.splitlines()
            if line.startswith("# TYPE ")
        }
    assert wanted - exported == set()
    assert len(wanted) >= 25


def test_the_notifier_exports_every_reminder_outcome_before_its_first_event() -> None:
    # A child made at its first increment starts at 1, which `increase` cannot see; one made at import starts at 0.
    source = Path(__file__).parents[2] / "services" / "notifier" / "src" / "outrider_notifier"
    used = {m for f in source.glob("*.py") for m in re.findall(r'REMINDERS\.labels\("([a-z_]+)"\)', f.read_text())}
    assert {"failed", "sent", "scheduled"} <= used
    for outcome in used:
        assert REGISTRY.get_sample_value("outrider_notifier_reminders_total", {"outcome": outcome}) is not None, outcome
