"""Ingest when Kafka is away: 503 with Retry-After, and nothing acknowledged that Kafka did not store."""

import time
from pathlib import Path

import httpx
import pytest

from outrider.devstack import Kafka
from tests.stack import as_admin, open_engagement, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
LINE = b'{"controller":"A","action":"b","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:00Z"}\n'


def test_kafka_down_gives_503_and_a_retry_after_it_returns_is_counted_once(
    database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    kafka = Kafka(tmp_path / "kafka")  # a broker of this test's own, so it can be stopped
    kafka.start()
    try:
        with running_services(
            kafka=kafka.bootstrap_servers, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
            names=("tracker", "ingest", "analyzer"), settings={"OUTRIDER_PRODUCE_TIMEOUT_S": "3"},
        ) as svc:  # fmt: skip
            tracker, ingest = svc["tracker"].url, svc["ingest"].url
            engagement, auth = open_engagement(tracker)
            url = f"{ingest}/v1/engagements/{engagement}/logs"
            params = {"source": "h", "file_id": "f", "log_type": "production_json"}

            kafka.stop()
            down = httpx.post(url, params=params, content=LINE * 5, headers=auth, timeout=30)
            assert down.status_code == 503
            assert int(down.headers["retry-after"]) > 0
            assert "retry from offset 0" in down.json()["detail"]

            kafka.start()
            deadline = time.monotonic() + 60
            while (
                again := httpx.post(url, params=params, content=LINE * 5, headers=auth, timeout=30)
            ).status_code != 202:
                assert again.status_code == 503, again.text
                assert time.monotonic() < deadline, "ingest never recovered after Kafka came back"
            stats_url = f"{tracker}/v1/engagements/{engagement}/stats"
            while as_admin.get(stats_url).json()["total_count"] < 5:
                assert time.monotonic() < deadline, "the retried upload was never counted"
                time.sleep(0.2)
            time.sleep(1)  # a record produced before the 503 and counted again would show up now
            assert as_admin.get(stats_url).json()["total_count"] == 5
    finally:
        kafka.stop()
