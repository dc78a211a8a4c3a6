"""Dates through the tracker API: a time without a zone, one past the calendar in UTC, a schedule years away — each
refused with a 422 naming the field, never a 500, and never turned into an event the notifier cannot plan."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.stack import as_admin, refused

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
NAIVE = "2024-05-01T10:00:00"
# In UTC: before year 1, after 9999; year 1 itself, which asyncpg would store as -infinity (a 500 on /status); the
# date that wedged the notifier.
PAST_THE_CALENDAR = (
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"
)  # fmt: skip
FAR = "2100-01-01T00:00:00Z"  # within the calendar, past the horizon


def test_dates_the_tracker_cannot_work_with_are_refused_naming_the_field(tracker: str) -> None:
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "d", "customer": "c"}).json()["id"]
    base = f"{tracker}/v1/engagements/{eid}"

    refused(as_admin.post(f"{base}/touchpoints", json={"title": "K", "scheduled_at": FAR}),
            ["body", "scheduled_at"], "at most 5 years ahead")  # fmt: skip
    for bad, says in ((NAIVE, "timezone"), *((b, "UTC") for b in PAST_THE_CALENDAR)):
        refused(as_admin.post(f"{base}/touchpoints", json={"title": "K", "scheduled_at": bad}),
                ["body", "scheduled_at"], says)  # fmt: skip
    within = (datetime.now(UTC) + timedelta(days=4 * 365)).isoformat()
    call = as_admin.post(f"{base}/touchpoints", json={"title": "K", "scheduled_at": within})
    assert call.status_code == 201, call.text
    touchpoint = f"{base}/touchpoints/{call.json()['id']}"
    refused(as_admin.patch(touchpoint, json={"scheduled_at": FAR}), ["body", "scheduled_at"], "5 years ahead")
    refused(as_admin.post(f"{touchpoint}/held", json={"next_scheduled_at": FAR}), ["body", "next_scheduled_at"],
            "5 years ahead")  # fmt: skip
    refused(as_admin.post(f"{touchpoint}/held", json={"held_at": PAST_THE_CALENDAR[0]}), ["body", "held_at"], "UTC")
    assert [t["status"] for t in as_admin.get(f"{base}/touchpoints").json()] == ["scheduled"]  # nothing changed
    review = {"gap": "SAML", "decision_needed_by": "9999-12-31", "requirement": "new",
              "customer_expectation": "x", "consequence_if_unmet": "y"}  # fmt: skip
    refused(as_admin.post(f"{base}/tech-reviews", json=review), ["body", "decision_needed_by"], "5 years ahead")
    assert as_admin.post(f"{base}/tech-reviews", json={**review, "decision_needed_by": "2027-01-15"}).status_code == 201
    assert [r["decision_needed_by"] for r in as_admin.get(f"{base}/tech-reviews").json()] == ["2027-01-15"]

    # The ranges of stats and findings take the same timestamps as everything else.
    for path in ("stats", "findings"):
        for param in ("since", "until"):
            for bad, says in ((NAIVE, "timezone"), *((b, "UTC") for b in PAST_THE_CALENDAR)):
                refused(as_admin.get(f"{base}/{path}", params={param: bad}), ["query", param], says)
        assert as_admin.get(f"{base}/{path}", params={"since": "2024-05-01T10:00:00+02:00"}).status_code == 200
        # A log type that does not exist is refused, not answered with nothing.
        assert as_admin.get(f"{base}/{path}", params={"log_type": "nginx"}).status_code == 422

    # Clients read the horizon in the API's schema.
    schemas = as_admin.get(f"{tracker}/openapi.json").json()["components"]["schemas"]
    assert "5 years" in schemas["TouchpointCreate"]["properties"]["scheduled_at"]["description"]


def test_a_field_a_body_does_not_know_is_refused_not_ignored(tracker: str) -> None:
    refused(as_admin.post(f"{tracker}/v1/engagements", json={"name": "d", "customer": "c", "custmer": "x"}),
            ["body", "custmer"], "Extra inputs are not permitted")  # fmt: skip
    created = as_admin.post(f"{tracker}/v1/engagements", json={"name": "d", "customer": "c"}).json()
    base = f"{tracker}/v1/engagements/{created['id']}"
    # `stage` moves only through /advance: a PATCH naming it answered 200 and changed nothing.
    refused(as_admin.patch(base, json={"version": created["version"], "stage": "rollout"}), ["body", "stage"],
            "Extra inputs are not permitted")  # fmt: skip
    assert as_admin.get(base).json()["stage"] == created["stage"]
    refused(as_admin.post(f"{base}/issues", json={"title": "t", "severity": "high", "assignee": "x"}),
            ["body", "assignee"], "Extra inputs are not permitted")  # fmt: skip
    # What the API returns is read back from rows: reads still work.
    assert as_admin.get(f"{base}/issues").status_code == 200


def test_a_touchpoint_cannot_be_held_at_a_time_that_has_not_come(tracker: str) -> None:
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "d", "customer": "c"}).json()["id"]
    base = f"{tracker}/v1/engagements/{eid}"
    call = as_admin.post(f"{base}/touchpoints", json={"title": "K", "scheduled_at": "2024-05-01T10:00:00Z"}).json()
    touchpoint = f"{base}/touchpoints/{call['id']}"

    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    refused(as_admin.post(f"{touchpoint}/held", json={"held_at": in_an_hour}), ["body", "held_at"], "future")
    assert [t["status"] for t in as_admin.get(f"{base}/touchpoints").json()] == ["scheduled"]  # nothing changed
    # A caller's clock a minute ahead of the tracker's is not a mistake (up to 5 minutes are allowed).
    a_minute_ahead = datetime.now(UTC) + timedelta(minutes=1)
    held = as_admin.post(f"{touchpoint}/held", json={"held_at": a_minute_ahead.isoformat()})
    assert held.status_code == 200, held.text
    assert datetime.fromisoformat(held.json()["held_at"]) == a_minute_ahead
    # Clients read the rule in the API's schema.
    schemas = as_admin.get(f"{tracker}/openapi.json").json()["components"]["schemas"]
    assert "5 minutes" in schemas["TouchpointHeld"]["properties"]["held_at"]["description"]
