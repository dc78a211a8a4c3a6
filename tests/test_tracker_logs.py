"""Touchpoints, the risk log (with findings promoted once), the portfolio and its gauges, the findings list,
through the real stack."""

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.stack import as_admin, open_engagement, running_services, write_findings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
SLOW = b"".join(
    b'{"controller":"SlowController","action":"show","status":200,"duration_s":9,"time":"2024-05-01T10:00:%02dZ"}\n' % i
    for i in range(25)
)


def until(check, what: str, timeout: float = 30):  # type: ignore[no-untyped-def]
    """Poll `check()` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return result


def test_touchpoints_risks_portfolio_and_findings(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        settings={
            "OUTRIDER_FINDINGS": '{"slow_endpoint_p99_ms": 5000, "min_count": 20}',
            "OUTRIDER_GAUGE_REFRESH_S": "0.5",
        },
    ) as svc:  # fmt: skip
        tracker, ingest, notifier = svc["tracker"].url, svc["ingest"].url, svc["notifier"].url
        eid, auth = open_engagement(tracker, "ACME")
        other, _ = open_engagement(tracker, "Globex")
        base = f"{tracker}/v1/engagements/{eid}"

        past = (datetime.now(UTC) - timedelta(days=2)).isoformat()
        call = as_admin.post(f"{base}/touchpoints", json={"title": "Discovery call", "scheduled_at": past,
                                                       "attendees": ["sa@example.com"]})  # fmt: skip
        assert call.status_code == 201
        naive = as_admin.post(f"{base}/touchpoints", json={"title": "x", "scheduled_at": "2030-01-01T10:00:00"})
        assert naive.status_code == 422  # a time without a zone is ambiguous across customers' time zones
        assert as_admin.get(f"{tracker}/v1/engagements", params={"overdue": True}).json()[0]["id"] == eid
        portfolio = as_admin.get(f"{tracker}/v1/portfolio").json()
        assert portfolio["overdue_touchpoints"] == 1
        assert portfolio["by_stage"] == [
            {"playbook_id": "gitlab-reference-architecture", "stage": "discovery", "count": 2}
        ]

        next_week = (datetime.now(UTC) + timedelta(days=7)).isoformat()
        held = as_admin.post(f"{base}/touchpoints/{call.json()['id']}/held",
                          json={"notes": "logs requested", "next_scheduled_at": next_week})  # fmt: skip
        assert held.json()["status"] == "held"
        assert as_admin.post(f"{base}/touchpoints/{call.json()['id']}/held", json={}).status_code == 409
        assert [t["status"] for t in as_admin.get(f"{base}/touchpoints").json()] == ["held", "scheduled"]
        assert as_admin.get(f"{tracker}/v1/engagements", params={"overdue": True}).json() == []
        assert as_admin.get(f"{tracker}/v1/engagements/{other}/touchpoints").json() == []

        # The analyzer raises a finding; promoting it twice opens one risk.
        upload = httpx.post(f"{ingest}/v1/engagements/{eid}/logs", params={"source": "h", "file_id": "p"},
                            content=SLOW, headers=auth)  # fmt: skip
        assert upload.status_code == 202
        until(lambda: as_admin.get(f"{base}/status").json()["findings"], "the slow_endpoint finding")
        promote = {"rule": "slow_endpoint", "key": "SlowController#show"}
        first = as_admin.post(f"{base}/risks/from-finding", json=promote)
        again = as_admin.post(f"{base}/risks/from-finding", json=promote)
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        assert first.json()["title"].startswith("slow endpoint: SlowController#show")
        manual = as_admin.post(f"{base}/risks", json={"title": "No staging environment", "likelihood": "medium",
                                                   "impact": "high", "owner": "TAM"})  # fmt: skip
        assert manual.status_code == 201
        assert len(as_admin.get(f"{base}/risks").json()) == 2
        unknown = as_admin.post(f"{base}/risks/from-finding", json={"rule": "slow_endpoint", "key": "Nope#x"})
        assert unknown.status_code == 404

        # Every change went out through the outbox; the notifier consumed them.
        until(
            lambda: 'outrider_notifier_events_total{type="risk.opened"} 2.0' in httpx.get(f"{notifier}/metrics").text,
            "risk.opened events at the notifier",
        )
        metrics = httpx.get(f"{notifier}/metrics").text
        assert 'outrider_notifier_events_total{type="touchpoint.scheduled"} 2.0' in metrics
        assert 'outrider_notifier_events_total{type="touchpoint.held"} 1.0' in metrics
        actions = [e["action"] for e in as_admin.get(f"{base}/audit").json()]
        assert actions == ["engagement.created", "token.created", "touchpoint.scheduled", "touchpoint.held",
                           "touchpoint.scheduled", "risk.opened", "risk.opened"]  # fmt: skip
        status = as_admin.get(f"{base}/status").json()
        # One open high-impact risk (-10) and one finding this week (-5); the touchpoint was held, nothing overdue.
        assert (status["health"], len(status["health_reasons"])) == (85, 2)
        gauge = 'outrider_tracker_engagements{playbook="gitlab-reference-architecture",stage="discovery"} 2.0'
        until(lambda: gauge in httpx.get(f"{tracker}/metrics").text, "the engagements-by-stage gauge")
        scores = (f'outrider_tracker_engagement_health{{engagement_id="{eid}"}} 85.0',
                  f'outrider_tracker_engagement_health{{engagement_id="{other}"}} 100.0')  # fmt: skip
        until(lambda: all(s in httpx.get(f"{tracker}/metrics").text for s in scores), "the health score gauges")
        # /metrics answers without a token: customer names are confidential, so no series carries one.
        assert "ACME" not in httpx.get(f"{tracker}/metrics").text

        # Mitigating the high-impact risk takes it off the open list and gives its 10 points back.
        risk = f"risks/{manual.json()['id']}"
        mitigated = as_admin.patch(
            f"{base}/{risk}", json={"status": "mitigated", "mitigation": "staging built in week 2"}
        )
        assert (mitigated.json()["status"], mitigated.json()["owner"]) == ("mitigated", "TAM")
        nulled = as_admin.patch(f"{base}/{risk}", json={"impact": None})
        assert (nulled.status_code, nulled.json()["detail"][0]["loc"]) == (422, ["body", "impact"])
        assert as_admin.patch(f"{base}/risks/{uuid.uuid4()}", json={"status": "closed"}).status_code == 404
        other_engagements = f"{tracker}/v1/engagements/{other}/{risk}"  # the id is right, the engagement is not
        assert as_admin.patch(other_engagements, json={"status": "closed"}).status_code == 404
        after = as_admin.get(f"{base}/status").json()
        assert (after["health"], [r["title"] for r in after["open_risks"]]) == (95, [first.json()["title"]])
        assert as_admin.get(f"{base}/audit").json()[-1]["details"] == {
            "risk_id": manual.json()["id"], "title": "No staging environment", "status": "mitigated",
            "mitigation": "staging built in week 2",
        }  # fmt: skip

        # Every finding, a page at a time: the analyzer's, and thirty more windows of another rule written as the
        # analyzer writes them.
        spikes = {"count": 40, "failed": 20, "rate": 0.5, "limit": 0.05}
        start = datetime(2024, 5, 2, tzinfo=UTC)
        write_findings(database_dsn, eid, [("error_spike", f"Busy#{i:02d}", start + timedelta(minutes=i), spikes)
                                           for i in range(30)])  # fmt: skip
        page = as_admin.get(f"{base}/findings").json()
        assert (page["total"], len(page["findings"])) == (31, 31)
        windows = [f["window_start"] for f in page["findings"]]
        assert windows == sorted(windows, reverse=True)  # newest window first
        (slow,) = as_admin.get(f"{base}/findings", params={"rule": "slow_endpoint"}).json()["findings"]
        assert (slow["key"], slow["figures"]["count"], slow["figures"]["limit_ms"]) == ("SlowController#show", 25, 5000)
        assert abs(slow["figures"]["p99_ms"] - 9000) <= 90  # from the sketch: within 1 %
        tail = as_admin.get(f"{base}/findings", params={"limit": 10, "offset": 25}).json()
        assert (tail["total"], len(tail["findings"]), tail["findings"][-1]["rule"]) == (31, 6, "slow_endpoint")
        ranged = as_admin.get(f"{base}/findings", params={"since": "2024-05-02T00:10:00Z",
                                                          "until": "2024-05-02T00:20:00Z"}).json()  # fmt: skip
        assert [f["key"] for f in ranged["findings"]] == [f"Busy#{i:02d}" for i in range(19, 9, -1)]
        assert as_admin.get(f"{tracker}/v1/engagements/{other}/findings").json()["total"] == 0
        assert as_admin.get(f"{tracker}/v1/engagements/{uuid.uuid4()}/findings").status_code == 404
        assert as_admin.get(f"{base}/findings", params={"limit": 0}).status_code == 422
