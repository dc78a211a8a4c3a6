"""Upload tokens are changes of their engagement like any other: minting and revoking one is audited and published
through the outbox in the same transaction, naming the token by its handle, never the token itself."""

import asyncio
import json

import asyncpg
import pytest

from tests.stack import as_admin

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def events(dsn: str, engagement_id: str) -> list[dict[str, object]]:
    """The engagement's events in the outbox, in the order they were recorded."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT payload FROM outbox WHERE key = $1 ORDER BY id", engagement_id)
        return [json.loads(r["payload"]) for r in rows]
    finally:
        await conn.close()


def test_minting_and_revoking_an_upload_token_is_audited_and_published(tracker: str, database_dsn: str) -> None:
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "n", "customer": "c"}).json()["id"]
    base = f"{tracker}/v1/engagements/{eid}"
    minted = as_admin.post(f"{base}/tokens", json={"name": "gitlab-rails-1"})
    assert minted.status_code == 201, minted.text
    token, handle = minted.json()["token"], minted.json()["id"]
    assert as_admin.delete(f"{base}/tokens/{handle}").status_code == 204
    assert as_admin.delete(f"{base}/tokens/{handle}").status_code == 204  # a repeat records nothing
    assert as_admin.delete(f"{base}/tokens/0123456789abcdef").status_code == 404

    about = {"token_id": handle, "name": "gitlab-rails-1"}
    trail = as_admin.get(f"{base}/audit").json()
    assert [(e["actor"], e["action"], e["details"]) for e in trail] == [
        ("admin", "engagement.created", {"playbook_id": "gitlab-reference-architecture", "stage": "discovery"}),
        ("admin", "token.created", about),
        ("admin", "token.revoked", about),
    ]
    published = asyncio.run(events(database_dsn, eid))
    assert [(e["type"], e["data"]) for e in published[1:]] == [("token.created", about), ("token.revoked", about)]
    assert token not in json.dumps(trail) + json.dumps(published)
