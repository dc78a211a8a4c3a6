"""A closed engagement reopened gets its reminders back — its touchpoints', pending hand-offs', open tech reviews' and
its stage's, those its close ended and those of what came while it was closed — through the real tracker, notifier
and a local Slack; a touchpoint cancelled meanwhile stays quiet."""

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from outrider.slack_local import LocalSlack
from tests.stack import as_admin, event_types, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll `check()` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return result


def pending_reminders(dsn: str, engagement_id: str) -> list[str]:
    async def fetch() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            query = "SELECT kind FROM reminders WHERE engagement_id = $1::uuid AND status = 'pending'"
            return [r["kind"] for r in await conn.fetch(query, engagement_id)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_a_reopened_engagements_touchpoints_are_reminded_again(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    slack = LocalSlack().start()
    settings = {"OUTRIDER_SLACK_TOKEN": "xoxb-test", "OUTRIDER_SLACK_API_URL": slack.api_url,
                "OUTRIDER_DISPATCH_INTERVAL_S": "0.2", "OUTRIDER_TOUCHPOINT_LEAD_S": "3"}  # fmt: skip
    try:
        with running_services(
            kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
            names=("tracker", "notifier"), settings=settings,
        ) as svc:  # fmt: skip
            tracker, notifier = svc["tracker"].url, svc["notifier"].url
            body = {"name": "10k rollout", "customer": "ACME", "slack_channel": "#acme"}
            eid = as_admin.post(f"{tracker}/v1/engagements", json=body).raise_for_status().json()["id"]
            base = f"{tracker}/v1/engagements/{eid}"
            start = datetime.now(UTC)

            def touchpoint(title: str, seconds: int) -> str:
                at = (start + timedelta(seconds=seconds)).isoformat()  # reminded 3 s before
                created = as_admin.post(f"{base}/touchpoints", json={"title": title, "scheduled_at": at})
                return str(created.raise_for_status().json()["id"])

            touchpoint("Planned before the close", 15)
            dropped = touchpoint("Dropped while closed", 15)
            as_admin.patch(base, json={"status": "closed", "version": 1}).raise_for_status()
            touchpoint("Planned while closed", 17)
            as_admin.post(f"{base}/touchpoints/{dropped}/cancel", json={"reason": "not needed"}).raise_for_status()
            seen = ('outrider_notifier_events_total{type="touchpoint.scheduled"} 3.0',
                    'outrider_notifier_events_total{type="touchpoint.cancelled"} 1.0')  # fmt: skip
            until(lambda: all(line in httpx.get(f"{notifier}/metrics").text for line in seen), "the closed period")
            assert pending_reminders(database_dsn, eid) == []  # the close ended them all, nothing new was planned

            as_admin.patch(base, json={"status": "active", "version": 2}).raise_for_status()
            assert len(until(lambda: len(slack.messages) >= 2 and slack.messages, "the reminders")) == 2
            assert [m["text"] for m in slack.messages] == [
                "ACME (10k rollout): Touchpoint coming up: Planned before the close",
                "ACME (10k rollout): Touchpoint coming up: Planned while closed",
            ]
            pending = ["stage_stalled", "touchpoint_overdue", "touchpoint_overdue"]  # its stage's back too
            assert sorted(pending_reminders(database_dsn, eid)) == pending
            time.sleep(1)
        assert len(slack.messages) == 2  # the dropped touchpoint (due with the first) stays quiet
    finally:
        slack.stop()


def test_a_reopened_engagements_hand_offs_reviews_and_stage_are_reminded_again(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    slack = LocalSlack().start()
    settings = {"OUTRIDER_SLACK_TOKEN": "xoxb-test", "OUTRIDER_SLACK_API_URL": slack.api_url}
    try:
        with running_services(
            kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
            names=("tracker", "notifier"), settings=settings,
        ) as svc:  # fmt: skip
            tracker, notifier = svc["tracker"].url, svc["notifier"].url
            body = {"name": "10k rollout", "customer": "ACME", "slack_channel": "#acme"}
            eid = as_admin.post(f"{tracker}/v1/engagements", json=body).raise_for_status().json()["id"]
            base = f"{tracker}/v1/engagements/{eid}"
            review = {"gap": "Geo replication", "decision_needed_by": str(date.today() + timedelta(days=30)),
                      "requirement": "new", "customer_expectation": "DR", "consequence_if_unmet": "No DR"}  # fmt: skip

            def handoff(to_team: str) -> None:
                body = {"from_team": "pre_sales", "to_team": to_team}
                as_admin.post(f"{base}/handoffs", json=body).raise_for_status()

            handoff("implementation")
            as_admin.post(f"{base}/tech-reviews", json=review).raise_for_status()
            planned = ["handoff_pending", "stage_stalled", "tech_review_due"]
            assert until(lambda: sorted(pending_reminders(database_dsn, eid)) == planned, "the reminders planned")
            as_admin.patch(base, json={"status": "closed", "version": 1}).raise_for_status()
            handoff("customer_success")  # requested while closed
            seen = 'outrider_notifier_events_total{type="handoff.requested"} 2.0'
            until(lambda: seen in httpx.get(f"{notifier}/metrics").text, "the closed period")
            assert pending_reminders(database_dsn, eid) == []  # the close ended them all, nothing new was planned

            as_admin.patch(base, json={"status": "active", "version": 2}).raise_for_status()
            again = ["handoff_pending", "handoff_pending", "stage_stalled", "tech_review_due"]
            assert until(lambda: sorted(pending_reminders(database_dsn, eid)) == again, "the reminders again")
            assert asyncio.run(event_types(database_dsn, eid))[-5:] == [
                "engagement.updated",
                "handoff.pending",
                "handoff.pending",
                "tech_review.open",
                "stage.current",
            ]
    finally:
        slack.stop()
