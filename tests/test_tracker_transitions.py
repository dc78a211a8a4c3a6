"""Repeated actions follow one rule: repeating a transition that already holds answers 200 with the row as it is and
records nothing (no audit entry, no event); asking a final state to become a different one is 409 naming the state."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.stack import as_admin, event_types

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def twice(url: str, body: dict[str, object]) -> dict[str, object]:
    """POST `body` to `url` twice: both 200 with the same row (the second changed nothing, not even a timestamp)."""
    first, second = as_admin.post(url, json=body), as_admin.post(url, json=body)
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert second.json() == first.json()
    result: dict[str, object] = first.json()
    return result


def refused(response: httpx.Response, says: str) -> None:
    """A 409 whose detail says which state the row is in."""
    assert response.status_code == 409, response.text
    assert says in response.json()["detail"], response.json()


def test_a_repeat_changes_nothing_and_a_final_state_does_not_change(tracker: str, database_dsn: str) -> None:
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "r", "customer": "c"}).json()["id"]
    base = f"{tracker}/v1/engagements/{eid}"
    in_days = [(datetime.now(UTC) + timedelta(days=d)).isoformat() for d in (3, 10)]

    # Issues: resolved is final; a PATCH that sets what is already there records nothing either.
    opened = as_admin.post(f"{base}/issues", json={"title": "OOM", "severity": "high"}).json()
    issue = f"{base}/issues/{opened['id']}"
    assert twice(f"{issue}/resolve", {"resolution": "cache on"})["status"] == "resolved"
    refused(as_admin.post(f"{issue}/resolve", json={"resolution": "rebooted"}), "issue is already resolved")
    assert as_admin.patch(issue, json={"severity": "high"}).status_code == 200
    assert as_admin.get(f"{base}/issues").json()[0]["resolution"] == "cache on"

    # Tech reviews: a decision, once made, stays.
    review = {"gap": "SAML", "decision_needed_by": "2027-01-15", "requirement": "new",
              "customer_expectation": "x", "consequence_if_unmet": "y"}  # fmt: skip
    decide = f"{base}/tech-reviews/{as_admin.post(f'{base}/tech-reviews', json=review).json()['id']}/decision"
    assert twice(decide, {"decision": "On roadmap 17.2"})["status"] == "decided"
    refused(as_admin.post(decide, json={"decision": "Won't do"}), "tech review is already decided")
    assert as_admin.get(f"{base}/tech-reviews").json()[0]["decision"] == "On roadmap 17.2"

    # Hand-offs: accepted once.
    handoff = as_admin.post(f"{base}/handoffs", json={"from_team": "pre_sales", "to_team": "implementation"})
    assert twice(f"{base}/handoffs/{handoff.json()['id']}/accept", {})["status"] == "accepted"

    # Touchpoints: held and cancelled are final, and neither turns into the other. A repeated hold does not
    # schedule a second follow-up.
    call = as_admin.post(f"{base}/touchpoints", json={"title": "Kickoff", "scheduled_at": in_days[0]}).json()
    call_url = f"{base}/touchpoints/{call['id']}"
    assert twice(f"{call_url}/held", {"notes": "went well", "next_scheduled_at": in_days[1]})["status"] == "held"
    assert len(as_admin.get(f"{base}/touchpoints").json()) == 2
    refused(as_admin.post(f"{call_url}/held", json={"notes": "went badly"}), "touchpoint is already held")
    refused(as_admin.post(f"{call_url}/cancel", json={"reason": "holiday"}), "touchpoint is already held")
    assert as_admin.patch(call_url, json={"title": "Kickoff"}).status_code == 200  # changes nothing
    refused(as_admin.patch(call_url, json={"title": "Renamed"}), "touchpoint is already held")
    other = as_admin.post(f"{base}/touchpoints", json={"title": "Demo", "scheduled_at": in_days[0]}).json()
    other_url = f"{base}/touchpoints/{other['id']}"
    assert twice(f"{other_url}/cancel", {"reason": "holiday"})["status"] == "cancelled"
    refused(as_admin.post(f"{other_url}/cancel", json={"reason": "no budget"}), "touchpoint is already cancelled")
    refused(as_admin.post(f"{other_url}/held", json={}), "touchpoint is already cancelled")

    # Risks have no final state (a closed risk may reopen), but closing one twice records one change.
    risk = as_admin.post(f"{base}/risks", json={"title": "Disk", "likelihood": "high", "impact": "high"}).json()
    closing = [as_admin.patch(f"{base}/risks/{risk['id']}", json={"status": "closed"}) for _ in range(2)]
    assert [r.json()["status"] for r in closing] == ["closed", "closed"]
    assert as_admin.patch(f"{base}/risks/{risk['id']}", json={"status": "open"}).json()["status"] == "open"

    # So has an engagement (closed, it may reopen): closing it again keeps its version and records nothing.
    closing = [as_admin.patch(base, json={"version": v, "status": "closed"}) for v in (1, 2)]
    assert [(e.json()["version"], e.json()["status"]) for e in closing] == [(2, "closed"), (2, "closed")]
    assert as_admin.patch(base, json={"version": 1, "status": "closed"}).status_code == 409  # a stale version

    trail = [e["action"] for e in as_admin.get(f"{base}/audit").json()]
    assert trail == [
        "engagement.created", "issue.opened", "issue.resolved", "tech_review.requested", "tech_review.decided",
        "handoff.requested", "handoff.accepted", "touchpoint.scheduled", "touchpoint.held",
        "touchpoint.scheduled", "touchpoint.scheduled", "touchpoint.cancelled", "risk.opened", "risk.updated",
        "risk.updated", "engagement.updated",
    ]  # fmt: skip
    assert asyncio.run(event_types(database_dsn, eid)) == trail
