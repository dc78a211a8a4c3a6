"""API-token verbs."""

import asyncpg

from outrider_common.tokens import new_token, token_hash
from outrider_tracker.auth.models import ApiTokenCreate, ApiTokenCreated, ApiTokenRead, Principal, Role

HANDLE = "substr(encode(token_hash, 'hex'), 1, 16)"
COLUMNS = f"{HANDLE} AS id, name, role, created_by, created_at, revoked_at, revoked_by"


async def create(conn: asyncpg.Connection | asyncpg.Pool, *, token_in: ApiTokenCreate, by: str) -> ApiTokenCreated:
    """Mint a token; only its digest is stored."""
    token = new_token()
    row = await conn.fetchrow(
        f"INSERT INTO api_tokens (token_hash, name, role, created_by) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}",
        token_hash(token),
        token_in.name,
        token_in.role,
        by,
    )
    return ApiTokenCreated.model_validate({**dict(row), "token": token})


async def get_all(conn: asyncpg.Connection | asyncpg.Pool) -> list[ApiTokenRead]:
    """Every API token, newest first."""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM api_tokens ORDER BY created_at DESC")
    return [ApiTokenRead.model_validate(dict(r)) for r in rows]


async def revoke(conn: asyncpg.Connection | asyncpg.Pool, *, token_id: str, by: str) -> bool:
    """Revoke a token at once (every request is checked), recording by whom; False when unknown. Revoking it again
    changes nothing: the first revocation's time and name stay."""
    return bool(
        await conn.fetchval(
            f"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()), revoked_by = coalesce(revoked_by, $2)"
            f" WHERE {HANDLE} = $1 RETURNING true",
            token_id,
            by,
        )
    )


async def principal_of(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> Principal | None:
    """The owner of a live token, or None for an unknown or revoked one."""
    row = await conn.fetchrow(
        "SELECT name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL", token_hash(token)
    )
    return Principal(row["name"], Role(row["role"])) if row else None
