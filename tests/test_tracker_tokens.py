"""Upload tokens are changes of their engagement like any other: minting and revoking one is audited and published
through the outbox in the same transaction, naming the token by its handle, never the token itself."""

import asyncio
import json
import uuid

import asyncpg
import pytest

from outrider_common import tokens
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


def test_closing_an_engagement_revokes_its_upload_tokens_and_mints_none_until_reopened(
    tracker: str, database_dsn: str
) -> None:
    """A customer's shippers keep their token after the engagement ends unless closing revokes it."""
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "n", "customer": "c"}).json()["id"]
    base = f"{tracker}/v1/engagements/{eid}"
    minted = [as_admin.post(f"{base}/tokens", json={"name": name}).json() for name in ("rails-1", "gitaly-1")]
    assert [asyncio.run(engagement_of(database_dsn, t["token"])) for t in minted] == [eid, eid]

    as_admin.patch(base, json={"status": "closed", "version": 1}).raise_for_status()
    assert [asyncio.run(engagement_of(database_dsn, t["token"])) for t in minted] == [None, None]  # ingest: 401
    assert all(t["revoked_at"] for t in as_admin.get(f"{base}/tokens").json())
    revoked = [e["details"] for e in as_admin.get(f"{base}/audit").json() if e["action"] == "token.revoked"]
    assert sorted(d["name"] for d in revoked) == ["gitaly-1", "rails-1"]
    assert {d["reason"] for d in revoked} == {"engagement closed"}
    refused = as_admin.post(f"{base}/tokens", json={"name": "late"})
    assert refused.status_code == 409
    assert "closed" in refused.json()["detail"]

    as_admin.patch(base, json={"status": "active", "version": 2}).raise_for_status()
    again = as_admin.post(f"{base}/tokens", json={"name": "rails-1"})
    assert again.status_code == 201, again.text
    assert asyncio.run(engagement_of(database_dsn, again.json()["token"])) == eid
    assert asyncio.run(engagement_of(database_dsn, minted[0]["token"])) is None  # reopening gives no old one back
    assert as_admin.post(f"{tracker}/v1/engagements/{uuid.uuid4()}/tokens", json={}).status_code == 404


async def engagement_of(dsn: str, token: str) -> str | None:
    """What ingest finds for `token` (its check on every request)."""
    conn = await asyncpg.connect(dsn)
    try:
        found = await tokens.engagement_of(conn, token)
        return str(found) if found else None
    finally:
        await conn.close()
