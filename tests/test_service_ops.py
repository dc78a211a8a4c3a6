"""Every service: liveness, readiness against real Kafka and PostgreSQL, Prometheus metrics, clean SIGTERM."""

import re
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from outrider.devstack import ROOT
from outrider_analyzer.metrics import FLUSH_STEPS
from tests.stack import open_engagement, running_services

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
            doc = httpx.get(f"{service.url}/openapi.json").json()
            assert doc["info"]["title"].lower().endswith(name)
            readyz = doc["paths"]["/readyz"]["get"]["responses"]  # the 503 and its body are documented
            assert readyz["503"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Readiness"}
            assert set(doc["components"]["schemas"]["Readiness"]["properties"]) == set(ready.json()), name
            if name == "tracker":  # the body limit's 413 on operations with a body, and only on them
                engagements = doc["paths"]["/v1/engagements"]
                assert "413" in engagements["post"]["responses"]
                assert "413" not in engagements["get"]["responses"]
                advance = doc["paths"]["/v1/engagements/{engagement_id}/advance"]["post"]["responses"]["409"]
                assert "last stage" in advance["description"]
                assert "needs a reason" in advance["description"]
            # The requests above were counted under their route template.
            assert f'outrider_{name}_http_requests_total{{method="GET",route="/readyz",status="200"}}' in (
                httpx.get(f"{service.url}/metrics").text
            ), name
        # Some real traffic, so labelled metrics have samples, then the naming conventions on every /metrics.
        engagement, auth = open_engagement(svc["tracker"].url)
        sample = (ROOT / "samples" / "production_json.log").read_bytes()
        httpx.post(f"{svc['ingest'].url}/v1/engagements/{engagement}/logs", params={"source": "ops", "file_id": "s"},
                   content=sample, headers=auth).raise_for_status()  # fmt: skip
        deadline = time.monotonic() + 30
        while "outrider_analyzer_lines_total{" not in httpx.get(f"{svc['analyzer'].url}/metrics").text:
            assert time.monotonic() < deadline, "the analyzer never counted the sample"
            time.sleep(0.2)
        # The flush that counted it timed each of its steps.
        analyzer_metrics = httpx.get(f"{svc['analyzer'].url}/metrics").text
        for step in FLUSH_STEPS:
            timed = re.search(
                rf'^outrider_analyzer_flush_step_seconds_count{{step="{step}"}} (\S+)$', analyzer_metrics, re.M
            )
            assert timed is not None, step
            assert float(timed.group(1)) >= 1, step
        problems = [
            p
            for name, service in svc.items()
            for p in convention_problems(name, httpx.get(f"{service.url}/metrics").text)
        ]
        assert problems == []
        # SIGTERM: each finishes in-flight work and exits 0 well before the SIGKILL deadline.
        codes = {name: service.stop(timeout=20) for name, service in svc.items()}
    assert codes == dict.fromkeys(svc, 0)


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
UNBOUNDED_LABELS = {"path", "url", "user", "email", "token", "line", "ip"}
# One label is per engagement on purpose: the health score, one series per *active* engagement (hundreds, not more).
PER_ENGAGEMENT = {("outrider_tracker_engagement_health", "engagement_id")}
UNITS = ("_seconds", "_bytes", "_rows", "_records", "_lines")


def convention_problems(service: str, exposition: str) -> list[str]:
    """What breaks the metric conventions in one scrape: help text, `outrider_<service>_` names, `_total` counters,
    histograms with a unit and seconds buckets over two orders of magnitude, and no unbounded label (raw path, user,
    line, id)."""
    # The parser adds `_total` to counters by itself, so the declared name is read from the TYPE line.
    problems = [f"{service}: counter {n} without _total" for n in re.findall(r"^# TYPE (outrider_\S+) counter$",
                exposition, re.M) if not n.endswith("_total")]  # fmt: skip
    for family in text_string_to_metric_families(exposition):
        name = family.name
        if not family.documentation or family.documentation == name:
            problems.append(f"{service}: {name} has no help text")
        if not name.startswith("outrider_"):
            continue  # process_*, python_*, the Kafka client's: not ours to name
        if not name.startswith(f"outrider_{service}_"):
            problems.append(f"{service}: {name} is not under outrider_{service}_")
        if family.type != "counter" and name.endswith("_total"):
            problems.append(f"{service}: {family.type} {name} is named like a counter")
        if family.type == "histogram":
            if not name.endswith(UNITS):
                problems.append(f"{service}: histogram {name} has no unit suffix")
            bounds = sorted(
                {float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")} - {float("inf")}
            )
            narrow = bounds and not (len(bounds) >= 6 and bounds[-1] >= 100 * bounds[0])  # no samples: no buckets
            if name.endswith("_seconds") and narrow:
                problems.append(f"{service}: {name} buckets {bounds}: fewer than 6 or under two orders of magnitude")
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label in UNBOUNDED_LABELS:
                    problems.append(f"{service}: {name} has an unbounded label {label}")
                if UUID.search(value) and (name, label) not in PER_ENGAGEMENT:
                    problems.append(f"{service}: {name}{{{label}={value!r}}} carries an id")
    return problems


def test_the_convention_check_catches_what_it_is_for() -> None:
    bad = """# HELP outrider_ingest_uploads Uploads.
# TYPE outrider_ingest_uploads counter
outrider_ingest_uploads{path="/v1/engagements/0b6f3a1e-8c2d-4f5a-9b7e-1d2c3b4a5f60/logs"} 1.0
# HELP outrider_tracker_requests_total outrider_tracker_requests_total
# TYPE outrider_tracker_requests_total gauge
outrider_tracker_requests_total 1.0
# HELP outrider_ingest_wait_seconds Wait.
# TYPE outrider_ingest_wait_seconds histogram
outrider_ingest_wait_seconds_bucket{le="1.0"} 1.0
outrider_ingest_wait_seconds_bucket{le="+Inf"} 1.0
outrider_ingest_wait_seconds_count 1.0
outrider_ingest_wait_seconds_sum 0.5
"""
    uploads = "outrider_ingest_uploads{path='/v1/engagements/0b6f3a1e-8c2d-4f5a-9b7e-1d2c3b4a5f60/logs'}"
    assert convention_problems("ingest", bad) == [
        "ingest: counter outrider_ingest_uploads without _total",
        "ingest: outrider_ingest_uploads has an unbounded label path",
        f"ingest: {uploads} carries an id",
        "ingest: outrider_tracker_requests_total has no help text",
        "ingest: outrider_tracker_requests_total is not under outrider_ingest_",
        "ingest: gauge outrider_tracker_requests_total is named like a counter",
        "ingest: outrider_ingest_wait_seconds buckets [1.0]: fewer than 6 or under two orders of magnitude",
    ]
