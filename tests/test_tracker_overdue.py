"""When the tracker calls a touchpoint overdue: as the notifier does, only once `OUTRIDER_OVERDUE_GRACE_S` (an hour by
default) has passed since its time, in the portfolio, the `overdue` filter and the overdue gauge alike."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from outrider_tracker.touchpoint.models import TouchpointRead
from outrider_tracker.touchpoint.service import is_overdue
from tests.stack import as_admin, running_services

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _touchpoint(scheduled_at: datetime, status: str = "scheduled") -> TouchpointRead:
    return TouchpointRead.model_validate({
        "id": "00000000-0000-0000-0000-000000000001", "engagement_id": "00000000-0000-0000-0000-000000000002",
        "title": "t", "scheduled_at": scheduled_at, "attendees": [], "status": status, "held_at": None, "notes": None,
    })  # fmt: skip


def test_a_touchpoint_is_overdue_only_once_the_grace_has_passed() -> None:
    assert not is_overdue(_touchpoint(NOW - timedelta(minutes=59)), now=NOW, grace=HOUR)
    assert is_overdue(_touchpoint(NOW - timedelta(minutes=61)), now=NOW, grace=HOUR)
    assert is_overdue(_touchpoint(NOW - timedelta(seconds=1)), now=NOW, grace=timedelta(0))
    assert not is_overdue(_touchpoint(NOW - 2 * HOUR, status="held"), now=NOW, grace=HOUR)
    assert not is_overdue(_touchpoint(NOW - 2 * HOUR, status="cancelled"), now=NOW, grace=HOUR)


@pytest.fixture
def tracker_with_quick_gauges(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> Iterator[str]:
    """The tracker with its default grace, refreshing its gauges five times a second."""
    with running_services(kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
                          names=("tracker",), settings={"OUTRIDER_GAUGE_REFRESH_S": "0.2"}) as svc:  # fmt: skip
        yield svc["tracker"].url


def _gauges(tracker: str) -> dict[str, float]:
    """Each sample of the tracker's /metrics, by name (the label-free ones; labelled ones summed)."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{tracker}/metrics").text):
        for sample in family.samples:
            samples[sample.name] = samples.get(sample.name, 0.0) + sample.value
    return samples


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
def test_the_tracker_counts_a_touchpoint_overdue_after_the_grace_as_the_notifier_does(
    tracker_with_quick_gauges: str,
) -> None:
    tracker = tracker_with_quick_gauges
    engagements = f"{tracker}/v1/engagements"
    ids = {}
    for name, ago in (("just_missed", timedelta(minutes=30)), ("overdue", timedelta(hours=2))):
        ids[name] = as_admin.post(engagements, json={"name": name, "customer": "c"}).json()["id"]
        at = (datetime.now(UTC) - ago).isoformat()
        created = as_admin.post(f"{engagements}/{ids[name]}/touchpoints", json={"title": "K", "scheduled_at": at})
        assert created.status_code == 201, created.text

    assert as_admin.get(f"{tracker}/v1/portfolio").json()["overdue_touchpoints"] == 1
    assert [e["name"] for e in as_admin.get(engagements, params={"overdue": "true"}).json()] == ["overdue"]
    assert [e["name"] for e in as_admin.get(engagements, params={"overdue": "false"}).json()] == ["just_missed"]
    statuses = {n: as_admin.get(f"{engagements}/{i}/status").json() for n, i in ids.items()}
    assert (statuses["just_missed"]["health"], statuses["just_missed"]["overdue_touchpoints"]) == (100, [])
    assert (statuses["overdue"]["health"], len(statuses["overdue"]["overdue_touchpoints"])) == (85, 1)
    # Nothing shipped yet: the automatic checklist items say which log types they wait for.
    checklist = {i["id"]: i for i in statuses["overdue"]["checklist"]}
    assert checklist["logs_received"]["missing"] == ["production_json", "api_json", "gitaly", "sidekiq"]

    # An engagement opened after the touchpoints were scheduled: once the gauges count it, they counted those too.
    as_admin.post(engagements, json={"name": "later", "customer": "c"}).raise_for_status()
    deadline = time.monotonic() + 30
    while (gauges := _gauges(tracker)).get("outrider_tracker_engagements", 0) < 3:
        assert time.monotonic() < deadline, gauges
        time.sleep(0.2)
    assert gauges["outrider_tracker_overdue_touchpoints"] == 1
    assert gauges["outrider_tracker_engagement_health"] == 100 + 85 + 100
