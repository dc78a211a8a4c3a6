"""Roles on the tracker API: no token 401, viewers read only, editors change engagements, admins manage tokens."""

import asyncio
import hashlib
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.stack import as_admin, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def stored_tokens(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch("SELECT * FROM api_tokens")
    finally:
        await conn.close()


def test_roles_are_enforced(kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker",)
    ) as svc:
        tracker = svc["tracker"].url
        engagements = f"{tracker}/v1/engagements"
        eid = as_admin.post(engagements, json={"name": "n", "customer": "c"}).raise_for_status().json()["id"]

        anonymous = httpx.get(engagements)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert httpx.get(engagements, headers=bearer("otr_not-a-token")).status_code == 401
        for open_path in ("/healthz", "/metrics", "/openapi.json"):  # probes and scrapes need no token
            assert httpx.get(f"{tracker}{open_path}").status_code == 200, open_path

        minted = {
            role: as_admin.post(f"{tracker}/v1/api-tokens", json={"name": f"{role}@example.com", "role": role}).json()
            for role in ("viewer", "editor")
        }
        viewer, editor = bearer(minted["viewer"]["token"]), bearer(minted["editor"]["token"])

        # Viewers read everything and change nothing.
        assert httpx.get(engagements, headers=viewer).json()[0]["id"] == eid
        assert httpx.get(f"{engagements}/{eid}/status", headers=viewer).status_code == 200
        refused = httpx.post(f"{engagements}/{eid}/advance", json={"force": True, "reason": "r"}, headers=viewer)
        assert refused.status_code == 403
        assert refused.json()["detail"] == "viewer@example.com has role viewer; POST needs editor"
        assert httpx.post(engagements, json={"name": "n", "customer": "c"}, headers=viewer).status_code == 403
        assert httpx.post(f"{engagements}/{eid}/tokens", json={"name": "x"}, headers=viewer).status_code == 403
        assert httpx.patch(f"{engagements}/{eid}", json={"version": 1}, headers=viewer).status_code == 403

        # Editors change engagements, and the audit trail names them; they cannot manage API tokens.
        created = httpx.post(engagements, json={"name": "e", "customer": "c"}, headers=editor)
        assert created.status_code == 201
        trail = httpx.get(f"{engagements}/{created.json()['id']}/audit", headers=viewer).json()
        assert [(e["action"], e["actor"]) for e in trail] == [("engagement.created", "editor@example.com")]
        assert httpx.get(f"{tracker}/v1/api-tokens", headers=editor).status_code == 403
        assert (
            httpx.post(f"{tracker}/v1/api-tokens", json={"name": "me", "role": "admin"}, headers=editor).status_code
            == 403
        )
        assert as_admin.post(f"{tracker}/v1/api-tokens", json={"name": "x", "role": "root"}).status_code == 422

        # Tokens are listed without their secret, stored only as a digest, and revoked at once.
        listed = {t["name"]: t for t in as_admin.get(f"{tracker}/v1/api-tokens").json()}
        assert "token" not in listed["editor@example.com"]
        assert listed["editor@example.com"]["id"] == minted["editor"]["id"]
        assert listed["editor@example.com"]["created_by"] == "admin"
        rows = asyncio.run(stored_tokens(database_dsn))
        assert {bytes(r["token_hash"]) for r in rows} == {
            hashlib.sha256(m["token"].encode()).digest() for m in minted.values()
        }
        assert not any(m["token"] in str(dict(r)) for r in rows for m in minted.values())
        assert listed["editor@example.com"]["revoked_by"] is None
        assert as_admin.delete(f"{tracker}/v1/api-tokens/{minted['editor']['id']}").status_code == 204
        assert httpx.get(engagements, headers=editor).status_code == 401
        revoked = {t["name"]: t for t in as_admin.get(f"{tracker}/v1/api-tokens").json()}["editor@example.com"]
        assert (revoked["revoked_by"], revoked["revoked_at"] is not None) == ("admin", True)  # who, beside who minted
        assert as_admin.delete(f"{tracker}/v1/api-tokens/nope").status_code == 404
        assert httpx.get(engagements, headers=viewer).status_code == 200

        # An engagement's upload tokens: an engagement that does not exist has none to list or mint (404).
        unknown = f"{engagements}/{uuid.uuid4()}/tokens"
        assert (as_admin.get(unknown).status_code, as_admin.post(unknown, json={"name": "x"}).status_code) == (404, 404)
        assert as_admin.get(f"{engagements}/{eid}/tokens").json() == []
