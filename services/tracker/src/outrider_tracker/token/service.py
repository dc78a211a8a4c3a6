"""Token verbs."""

from uuid import UUID

import asyncpg

from outrider_common.tokens import new_token, token_hash
from outrider_tracker.token.models import TokenCreate, TokenCreated, TokenRead

HANDLE = "substr(encode(token_hash, 'hex'), 1, 16)"


async def create(
    conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID, token_in: TokenCreate
) -> TokenCreated:
    """Mint a token for the engagement; only its digest is stored."""
    token = new_token()
    created_at = await conn.fetchval(
        "INSERT INTO engagement_tokens (token_hash, engagement_id, name) VALUES ($1, $2, $3) RETURNING created_at",
        token_hash(token),
        engagement_id,
        token_in.name,
    )
    return TokenCreated(id=token_hash(token).hex()[:16], engagement_id=engagement_id, name=token_in.name, token=token,
                        created_at=created_at)  # fmt: skip


async def get_all(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> list[TokenRead]:
    """The engagement's tokens, newest first."""
    rows = await conn.fetch(
        f"SELECT {HANDLE} AS id, name, created_at, revoked_at FROM engagement_tokens WHERE engagement_id = $1"
        " ORDER BY created_at DESC",
        engagement_id,
    )
    return [TokenRead.model_validate(dict(r)) for r in rows]


async def revoke(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID, token_id: str) -> bool:
    """Revoke a token at once (ingest checks every request); False when unknown."""
    return bool(
        await conn.fetchval(
            f"UPDATE engagement_tokens SET revoked_at = coalesce(revoked_at, now())"
            f" WHERE engagement_id = $1 AND {HANDLE} = $2 RETURNING true",
            engagement_id,
            token_id,
        )
    )
