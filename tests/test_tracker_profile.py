"""The deployment profile's audit trail says what a PUT changed, clearing a field included, and a PUT that changes
nothing records nothing."""

import asyncio

import asyncpg
import pytest

from tests.stack import as_admin

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def event_types(dsn: str, engagement_id: str) -> list[str]:
    """The types of the engagement's events in the outbox, in the order they were recorded."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT payload->>'type' FROM outbox WHERE key = $1 ORDER BY id", engagement_id)
        return [r[0] for r in rows]
    finally:
        await conn.close()


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
