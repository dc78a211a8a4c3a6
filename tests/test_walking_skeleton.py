"""One log file end to end: ingest → Kafka → analyzer (Rust logparse) → PostgreSQL → tracker API."""

import time
from pathlib import Path

import httpx
import pytest

from tests.stack import as_admin, open_engagement, running_services

FIXTURE = Path(__file__).parent / "fixtures" / "production_json_small.log"
pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def wait_for_stats(tracker: str, engagement_id: str, total: int, timeout: float = 60) -> dict:
    """Poll the tracker until the engagement's stats reach `total` requests."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = as_admin.get(f"{tracker}/v1/engagements/{engagement_id}/stats").raise_for_status().json()
        if body["total_count"] >= total:
            return body
        time.sleep(0.2)
    raise AssertionError(f"stats never reached {total} requests; last answer: {body}")


def test_log_file_reaches_the_status_api_through_kafka_and_postgres(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path) as svc:
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        engagement_id, auth = open_engagement(tracker)
        upload = httpx.post(
            f"{ingest}/v1/engagements/{engagement_id}/logs",
            params={"source": "gitlab-rails-1", "file_id": "production_json.log", "log_type": "production_json"},
            content=FIXTURE.read_bytes(),
            headers=auth,
        )
        assert upload.status_code == 202, upload.text
        assert upload.json()["lines"] == 8  # 7 requests + 1 truncated line, all shipped
        assert upload.json()["next_offset"] == FIXTURE.stat().st_size

        stats = wait_for_stats(tracker, engagement_id, total=7)
        by_key = {k["key"]: k for k in stats["keys"]}
        show = by_key["Projects::IssuesController#show"]
        index = by_key["Projects::MergeRequestsController#index"]
        assert (show["count"], show["failed"], index["count"], index["failed"]) == (4, 1, 3, 0)
        assert show["mean_ms"] == pytest.approx(250.0)
        assert show["perc_failed"] == pytest.approx(25.0)
        assert index["mean_ms"] == pytest.approx(2000.0)

        # A retried upload of the same bytes carries the same chunk id: the analyzer must not count it again.
        again = httpx.post(
            f"{ingest}/v1/engagements/{engagement_id}/logs",
            params={"source": "gitlab-rails-1", "file_id": "production_json.log", "log_type": "production_json"},
            content=FIXTURE.read_bytes(),
            headers=auth,
        )
        assert again.status_code == 202
        analyzer_metrics = svc["analyzer"].url + "/metrics"
        deadline = time.monotonic() + 30
        while 'outrider_analyzer_chunks_total{outcome="duplicate"} 1.0' not in httpx.get(analyzer_metrics).text:
            assert time.monotonic() < deadline, "the retried chunk was never seen by the analyzer"
            time.sleep(0.2)
        assert wait_for_stats(tracker, engagement_id, total=7)["total_count"] == 7

        # The tracker's outbox carried `engagement.created` through Kafka to the notifier.
        notifier_metrics = svc["notifier"].url + "/metrics"
        while 'outrider_notifier_events_total{type="engagement.created"} 1.0' not in httpx.get(notifier_metrics).text:
            assert time.monotonic() < deadline, "the notifier never received engagement.created"
            time.sleep(0.2)
