"""The deployment profile's audit trail says what a PUT changed, clearing a field included, and a PUT that changes
nothing records nothing."""

import asyncio

import pytest

from tests.stack import as_admin, event_types

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def test_a_profile_change_records_what_changed_and_a_repeat_nothing(tracker: str, database_dsn: str) -> None:
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "n", "customer": "c"}).json()["id"]
    base = f"{tracker}/v1/engagements/{eid}"
    first = {"deployment_type": "helm", "hosting_provider": "AWS", "code_hosts": ["GitLab 16.11"]}
    assert as_admin.put(f"{base}/profile", json=first).status_code == 200
    stored = as_admin.get(f"{base}/profile").json()
    assert as_admin.put(f"{base}/profile", json=first).json() == stored  # the same again: not even a timestamp moves
    # The CLI's `--set` sends the whole profile back: here with the provider cleared and a size added.
    cleared = {**first, "hosting_provider": None, "largest_repo_gb": "38.5"}
    assert as_admin.put(f"{base}/profile", json=cleared).json()["hosting_provider"] is None
    assert as_admin.put(f"{base}/profile", json=cleared).status_code == 200

    trail = [
        (e["action"], e["details"]) for e in as_admin.get(f"{base}/audit").json() if e["action"] != "engagement.created"
    ]
    assert trail == [
        ("profile.updated", first),
        ("profile.updated", {"hosting_provider": None, "largest_repo_gb": "38.5"}),
    ]
    assert asyncio.run(event_types(database_dsn, eid)) == ["engagement.created", "profile.updated", "profile.updated"]


def test_a_patch_changes_only_the_fields_it_sends(tracker: str) -> None:
    # Two people, each from the same read, change different fields: with a PATCH neither undoes the other.
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "n", "customer": "c"}).json()["id"]
    base = f"{tracker}/v1/engagements/{eid}"
    as_admin.put(f"{base}/profile", json={"deployment_type": "helm", "hosting_provider": "AWS"}).raise_for_status()
    as_admin.patch(f"{base}/profile", json={"total_cpu": 96}).raise_for_status()
    after = as_admin.patch(f"{base}/profile", json={"hosting_provider": None, "code_hosts": ["GitLab 17.2"]}).json()
    assert {k: after[k] for k in ("deployment_type", "hosting_provider", "total_cpu", "code_hosts")} == {
        "deployment_type": "helm", "hosting_provider": None, "total_cpu": 96, "code_hosts": ["GitLab 17.2"],
    }  # fmt: skip
    assert as_admin.patch(f"{base}/profile", json={"stgae": "x"}).status_code == 422  # unknown fields still refused
    trail = [e["details"] for e in as_admin.get(f"{base}/audit").json() if e["action"] == "profile.updated"]
    assert trail[1:] == [{"total_cpu": 96}, {"hosting_provider": None, "code_hosts": ["GitLab 17.2"]}]


def test_a_write_naming_a_stale_version_is_refused(tracker: str) -> None:
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "n", "customer": "c"}).json()["id"]
    base = f"{tracker}/v1/engagements/{eid}/profile"
    assert as_admin.get(base).json()["version"] == 0  # nothing stored yet
    first = as_admin.put(base, json={"deployment_type": "helm", "version": 0}).json()
    assert first["version"] == 1
    # Two people read version 1 and both replace the profile: the second is told, instead of undoing the first.
    assert as_admin.put(base, json={"deployment_type": "omnibus", "total_cpu": 8, "version": 1}).json()["version"] == 2
    stale = as_admin.put(base, json={"deployment_type": "helm", "version": 1})
    assert stale.status_code == 409
    assert "version 2, not 1" in stale.json()["detail"]
    assert as_admin.patch(base, json={"total_cpu": 16, "version": 1}).status_code == 409
    now = as_admin.get(base).json()
    assert (now["deployment_type"], now["total_cpu"], now["version"]) == ("omnibus", 8, 2)
    # A write that changes nothing keeps the version; one without a version is taken as before.
    assert as_admin.patch(base, json={"total_cpu": 8, "version": 2}).json()["version"] == 2
    assert as_admin.patch(base, json={"total_cpu": 16}).json()["version"] == 3
    assert as_admin.patch(base, json={"version": -1}).status_code == 422
