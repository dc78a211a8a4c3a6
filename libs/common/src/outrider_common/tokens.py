"""Engagement tokens: minted by the tracker, verified by ingest, stored only as a SHA-256 digest."""

import hashlib
import secrets
from uuid import UUID

import asyncpg

PREFIX = "otr_"


def new_token() -> str:
    """A fresh random token (256 bits); shown once to its owner, never stored."""
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """The digest kept in `engagement_tokens` (a fast hash is enough: tokens are random, not passwords)."""
    return hashlib.sha256(token.encode()).digest()


async def engagement_of(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> UUID | None:
    """The engagement a live token belongs to, or None for an unknown or revoked token."""
    result: UUID | None = await conn.fetchval(
        "SELECT engagement_id FROM engagement_tokens WHERE token_hash = $1 AND revoked_at IS NULL", token_hash(token)
    )
    return result
