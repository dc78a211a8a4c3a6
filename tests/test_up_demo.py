"""The demo `make up` runs: the logs it ships complete the demo engagement's data-driven exit criteria ("Logs
received", "Logs analysed" of the GitLab playbook's Discovery stage), which need all four GitLab log types."""

from pathlib import Path

import pytest

from outrider.up import demo_logs, ship_demo_logs
from tests.stack import ADMIN_TOKEN, as_admin, open_engagement, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def test_the_demo_logs_complete_the_exit_criteria_about_logs(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
                          names=("tracker", "ingest", "analyzer")) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        engagement_id, auth = open_engagement(tracker)
        logs = demo_logs(tmp_path / "samples")
        lines = ship_demo_logs(ingest=svc["ingest"].url, tracker=tracker, engagement_id=engagement_id,
                               token=auth["Authorization"].removeprefix("Bearer "), admin_token=ADMIN_TOKEN,
                               logs=logs)  # fmt: skip
        status = as_admin.get(f"{tracker}/v1/engagements/{engagement_id}/status").json()

    assert all(n > 0 for n in lines.values()), lines
    checklist = {i["id"]: i for i in status["checklist"]}
    assert checklist["logs_received"]["done"], checklist["logs_received"]
    assert checklist["logs_analysed"]["done"], checklist["logs_analysed"]
    assert status["blocking"] == ["Request production_json, api_json, Gitaly and Sidekiq logs",
                                  "Follow-up touchpoint on the findings held"]  # the two a person ticks  # fmt: skip
