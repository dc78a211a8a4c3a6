"""Token verbs."""

from uuid import UUID

import asyncpg

from outrider_common.tokens import new_token, token_hash
from outrider_tracker.token.models import TokenCreate, TokenCreated


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
    return TokenCreated(engagement_id=engagement_id, name=token_in.name, token=token, created_at=created_at)
