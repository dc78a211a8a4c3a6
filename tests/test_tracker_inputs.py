"""Input that names nothing the tracker knows, or asks for something meaningless, is refused with a 422 naming the
field: a hand-off to the team that already has the engagement, list filters on a stage or playbook no playbook has
or on a finding rule the analyzer does not have."""

import pytest

from tests.stack import as_admin, refused

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def test_meaningless_input_is_refused_naming_the_field(tracker: str) -> None:
    engagements = f"{tracker}/v1/engagements"
    eid = as_admin.post(engagements, json={"name": "n", "customer": "c"}).json()["id"]

    # A hand-off goes from one team to another.
    same = as_admin.post(f"{engagements}/{eid}/handoffs", json={"from_team": "pre_sales", "to_team": "pre_sales"})
    refused(same, ["body"], "from_team and to_team are both 'pre_sales'")
    assert as_admin.get(f"{engagements}/{eid}/handoffs").json() == []

    # Filters on a stage or playbook that no playbook has would only ever match nothing.
    refused(as_admin.get(engagements, params={"stage": "bogus"}), ["query", "stage"], "unknown stage 'bogus'")
    refused(as_admin.get(engagements, params={"playbook_id": "nope"}), ["query", "playbook_id"],
            "unknown playbook 'nope'")  # fmt: skip
    # Likewise a findings filter on a rule the analyzer does not have.
    findings = f"{engagements}/{eid}/findings"
    refused(as_admin.get(findings, params={"rule": "slow_endpoints"}), ["query", "rule"], "'slow_endpoint'")
    assert as_admin.get(findings, params={"rule": "slow_endpoint"}).json()["total"] == 0
    # A page past anything PostgreSQL can count to is refused, not a 500; the engagement list's bound holds.
    refused(as_admin.get(findings, params={"offset": 10**19}), ["query", "offset"], "less than or equal to 2147483647")
    assert as_admin.get(findings, params={"offset": 2147483647}).json() == {"engagement_id": eid, "total": 0,
                                                                           "findings": []}  # fmt: skip
    known = {"stage": "discovery", "playbook_id": "gitlab-reference-architecture"}
    assert [e["id"] for e in as_admin.get(engagements, params=known).json()] == [eid]
    assert as_admin.get(engagements, params={"stage": "design"}).json() == []  # a stage of another playbook
    # Clients read the choices in the API's schema.
    parameters = as_admin.get(f"{tracker}/openapi.json").json()["paths"]["/v1/engagements"]["get"]["parameters"]
    choices = {p["name"]: p["schema"]["anyOf"][0]["enum"] for p in parameters if p["name"] in ("stage", "playbook_id")}
    assert "discovery" in choices["stage"]
    assert choices["playbook_id"] == ["ai-assistant-rollout", "gitlab-reference-architecture", "joint-implementation"]
