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


def test_numbers_json_cannot_answer_with_are_refused_not_500(tracker: str) -> None:
    """NaN, Infinity and numbers past a float (1e400) parse as non-finite floats, which the 422 that refuses them
    names as strings: JSON itself cannot carry them back. A repository size is bounded, not stored at any length."""
    engagements = f"{tracker}/v1/engagements"
    eid = as_admin.post(engagements, json={"name": "n", "customer": "c"}).json()["id"]
    profile = f"{engagements}/{eid}/profile"
    raw = {"Content-Type": "application/json"}

    token = as_admin.post(f"{tracker}/v1/api-tokens", content=b'{"name": NaN, "role": "viewer"}', headers=raw)
    refused(token, ["body", "name"], "valid string")
    assert token.json()["detail"][0]["input"] == "NaN"
    users = as_admin.post(engagements, content=b'{"name": "n", "customer": "c", "current_users": 1e999}', headers=raw)
    refused(users, ["body", "current_users"], "finite number")
    assert users.json()["detail"][0]["input"] == "Infinity"
    minus = as_admin.put(profile, content=b'{"largest_repo_gb": -Infinity}', headers=raw)
    refused(minus, ["body", "largest_repo_gb"], "finite number")
    assert minus.json()["detail"][0]["input"] == "-Infinity"
    refused(as_admin.put(profile, content=b'{"largest_repo_gb": 1e400}', headers=raw), ["body", "largest_repo_gb"],
            "finite number")  # fmt: skip
    # Past PostgreSQL's numeric scale (a DataError), or a 200,001-digit number stored as it came.
    for far in ("1e-20000", "1e200000", "0.0001", "1000000000"):
        refused(as_admin.put(profile, json={"largest_repo_gb": far}), ["body", "largest_repo_gb"], "")
    assert as_admin.get(profile).json()["largest_repo_gb"] is None
    stored = as_admin.put(profile, json={"largest_repo_gb": "999999999.999"})
    assert (stored.status_code, stored.json()["largest_repo_gb"]) == (200, "999999999.999")


def test_a_nul_character_is_refused_as_a_validation_error(tracker: str) -> None:
    """The 422 for a NUL has the shape the API documents for every 422: a list of errors with loc, msg and type."""
    engagements = f"{tracker}/v1/engagements"
    body = as_admin.post(engagements, json={"name": "a\u0000b", "customer": "c"})
    refused(body, ["body"], "NUL")
    assert body.json()["detail"][0]["type"] == "string_nul"
    refused(as_admin.get(engagements, params={"owner": "a\u0000b"}), ["query"], "NUL")
    refused(as_admin.get(f"{engagements}/a%00b"), ["path"], "NUL")
    assert as_admin.get(engagements).json() == []
