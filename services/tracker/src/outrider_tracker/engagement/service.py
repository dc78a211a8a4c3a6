"""Engagement verbs (SQL beside the module that owns the table)."""

from uuid import UUID, uuid4

import asyncpg

from outrider_tracker import outbox
from outrider_tracker.audit import service as audit
from outrider_tracker.engagement.models import EngagementCreate, EngagementRead
from outrider_tracker.playbook import service as playbooks

COLUMNS = "id, name, customer, playbook_id, stage, stage_entered_at, status, created_at, updated_at"


async def get(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> EngagementRead | None:
    """The engagement with this id, or None."""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM engagements WHERE id = $1", engagement_id)
    return EngagementRead.model_validate(dict(row)) if row else None


async def get_all(conn: asyncpg.Connection | asyncpg.Pool) -> list[EngagementRead]:
    """Every engagement, newest first."""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM engagements ORDER BY created_at DESC")
    return [EngagementRead.model_validate(dict(r)) for r in rows]


async def create(pool: asyncpg.Pool, *, engagement_in: EngagementCreate, actor: str) -> EngagementRead:
    """Open a new engagement at its playbook's first stage; audit and event in the same transaction."""
    playbook = playbooks.get_all()[engagement_in.playbook_id]
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"INSERT INTO engagements (id, name, customer, playbook_id, stage) VALUES ($1, $2, $3, $4, $5)"
            f" RETURNING {COLUMNS}",
            uuid4(),
            engagement_in.name,
            engagement_in.customer,
            playbook.id,
            playbook.stages[0].id,
        )
        assert row is not None  # INSERT … RETURNING always returns the row
        engagement = EngagementRead.model_validate(dict(row))
        await outbox.record(
            conn,
            engagement_id=engagement.id,
            type="engagement.created",
            data={"name": engagement.name, "customer": engagement.customer, "playbook_id": playbook.id},
        )
        await audit.record(
            conn,
            engagement_id=engagement.id,
            actor=actor,
            action="engagement.created",
            details={"playbook_id": playbook.id, "stage": engagement.stage},
        )
    return engagement
