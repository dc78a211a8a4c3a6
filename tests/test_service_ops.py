"""Every service: liveness, readiness against real Kafka and PostgreSQL, Prometheus metrics, clean SIGTERM."""

from pathlib import Path

import httpx
import pytest

from tests.stack import running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

OWN_METRIC = {
    "ingest": "outrider_ingest_bytes_total",
    "analyzer": "outrider_analyzer_lines_total",
    "tracker": "outrider_tracker_http_requests_total",
    "notifier": "outrider_notifier_events_total",
}


def test_every_service_is_live_ready_observable_and_stops_cleanly(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path) as svc:
        for name, service in svc.items():
            assert httpx.get(f"{service.url}/healthz").json() == {"status": "ok"}, name
            ready = httpx.get(f"{service.url}/readyz")
            assert ready.status_code == 200, (name, ready.text)
            assert set(ready.json()["checks"]) == {"kafka", "postgres"}, name
            metrics = httpx.get(f"{service.url}/metrics")
            assert metrics.headers["content-type"].startswith("text/plain"), name
            assert f"# TYPE {OWN_METRIC[name]} counter" in metrics.text, name
            assert httpx.get(f"{service.url}/openapi.json").json()["info"]["title"].lower().endswith(name)
            # The requests above were counted under their route template.
            assert f'outrider_{name}_http_requests_total{{method="GET",route="/readyz",status="200"}}' in (
                httpx.get(f"{service.url}/metrics").text
            ), name
        # SIGTERM: each finishes in-flight work and exits 0 well before the SIGKILL deadline.
        codes = {name: service.stop(timeout=20) for name, service in svc.items()}
    assert codes == dict.fromkeys(svc, 0)
