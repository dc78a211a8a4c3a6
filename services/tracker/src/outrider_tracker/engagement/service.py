"""Engagement verbs (SQL beside the module that owns the table)."""

from uuid import UUID, uuid4

import asyncpg

from outrider_tracker import outbox
from outrider_tracker.engagement.models import EngagementCreate, EngagementRead

COLUMNS = "id, name, customer, status, created_at, updated_at"


async def get(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> EngagementRead | None:
    """The engagement with this id, or None."""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM engagements WHERE id = $1", engagement_id)
    return EngagementRead.model_validate(dict(row)) if row else None


async def get_all(conn: asyncpg.Connection | asyncpg.Pool) -> list[EngagementRead]:
    """Every engagement, newest first."""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM engagements ORDER BY created_at DESC")
    return [EngagementRead.model_validate(dict(r)) for r in rows]


async def create(pool: asyncpg.Pool, *, engagement_in: EngagementCreate) -> EngagementRead:
    """Open a new engagement and record `engagement.created` in the same transaction."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"INSERT INTO engagements (id, name, customer) VALUES ($1, $2, $3) RETURNING {COLUMNS}",
            uuid4(),
            engagement_in.name,
            engagement_in.customer,
        )
        assert row is not None  # INSERT … RETURNING always returns the row
        engagement = EngagementRead.model_validate(dict(row))
        await outbox.record(
            conn,
            engagement_id=engagement.id,
            type="engagement.created",
            data={"name": engagement.name, "customer": engagement.customer},
        )
    return engagement
