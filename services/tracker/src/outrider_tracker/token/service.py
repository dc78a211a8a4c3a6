"""Token verbs: minting and revoking are changes of the engagement, audited and published in their transaction."""

from uuid import UUID

import asyncpg

from outrider_common.tokens import new_token, token_hash
from outrider_tracker.audit import service as audit
from outrider_tracker.token.models import TokenCreate, TokenCreated, TokenRead

HANDLE = "substr(encode(token_hash, 'hex'), 1, 16)"
COLUMNS = f"{HANDLE} AS id, name, created_at, revoked_at"


class EngagementClosed(Exception):
    """A token for a closed engagement: closing revoked its tokens, and a new one would open its uploads again."""


async def create(pool: asyncpg.Pool, *, engagement_id: UUID, token_in: TokenCreate, actor: str) -> TokenCreated | None:
    """Mint a token for the engagement (None when unknown); only its digest is stored, and only its handle is
    audited. Refused for a closed engagement (reactivate it first)."""
    token = new_token()
    digest = token_hash(token)
    handle = digest.hex()[:16]
    async with pool.acquire() as conn, conn.transaction():
        # FOR SHARE: a close committing meanwhile cannot miss this token.
        status = await conn.fetchval("SELECT status FROM engagements WHERE id = $1 FOR SHARE", engagement_id)
        if status is None:
            return None
        if status == "closed":
            raise EngagementClosed(f"engagement {engagement_id} is closed: reactivate it to mint upload tokens")
        created_at = await conn.fetchval(
            "INSERT INTO engagement_tokens (token_hash, engagement_id, name) VALUES ($1, $2, $3) RETURNING created_at",
            digest,
            engagement_id,
            token_in.name,
        )
        await audit.record_change(conn, engagement_id=engagement_id, actor=actor, action="token.created",
                                  details={"token_id": handle, "name": token_in.name})  # fmt: skip
    return TokenCreated(id=handle, engagement_id=engagement_id, name=token_in.name, token=token, created_at=created_at)


async def get_all(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> list[TokenRead]:
    """The engagement's tokens, newest first."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM engagement_tokens WHERE engagement_id = $1 ORDER BY created_at DESC", engagement_id
    )
    return [TokenRead.model_validate(dict(r)) for r in rows]


async def revoke_all(conn: asyncpg.Connection, *, engagement_id: UUID, actor: str, why: str) -> int:
    """Revoke every live token of the engagement, each audited with `why` (in the caller's transaction)."""
    rows = await conn.fetch(
        f"UPDATE engagement_tokens SET revoked_at = now() WHERE engagement_id = $1 AND revoked_at IS NULL"
        f" RETURNING {COLUMNS}",
        engagement_id,
    )
    for row in rows:
        await audit.record_change(conn, engagement_id=engagement_id, actor=actor, action="token.revoked",
                                  details={"token_id": row["id"], "name": row["name"], "reason": why})  # fmt: skip
    return len(rows)


async def revoke(pool: asyncpg.Pool, *, engagement_id: UUID, token_id: str, actor: str) -> TokenRead | None:
    """Revoke a token at once (ingest checks every request); None when unknown. Revoking it again records nothing."""
    async with pool.acquire() as conn, conn.transaction():
        # One conditional update: a concurrent revoke waits on the row, then finds it revoked and records nothing.
        row = await conn.fetchrow(
            f"UPDATE engagement_tokens SET revoked_at = now() WHERE engagement_id = $1 AND {HANDLE} = $2"
            f" AND revoked_at IS NULL RETURNING {COLUMNS}",
            engagement_id,
            token_id,
        )
        if row is None:  # unknown, or revoked before
            row = await conn.fetchrow(
                f"SELECT {COLUMNS} FROM engagement_tokens WHERE engagement_id = $1 AND {HANDLE} = $2",
                engagement_id,
                token_id,
            )
            return TokenRead.model_validate(dict(row)) if row else None
        await audit.record_change(conn, engagement_id=engagement_id, actor=actor, action="token.revoked",
                                  details={"token_id": token_id, "name": row["name"]})  # fmt: skip
    return TokenRead.model_validate(dict(row))
