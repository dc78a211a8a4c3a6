"""The audit trail: every change of an engagement, written in the change's transaction."""

import json
from typing import Any
from uuid import UUID

import asyncpg

from outrider_tracker import outbox
from outrider_tracker.audit.models import AuditEntry


async def record(
    conn: asyncpg.Connection,
    *,
    engagement_id: UUID,
    actor: str,
    action: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an entry; call inside the transaction that makes the change."""
    await conn.execute(
        "INSERT INTO audit_log (engagement_id, actor, action, reason, details) VALUES ($1, $2, $3, $4, $5::jsonb)",
        engagement_id,
        actor,
        action,
        reason,
        json.dumps(details or {}),
    )


async def get_all(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> list[AuditEntry]:
    """The engagement's trail, oldest first."""
    rows = await conn.fetch(
        "SELECT at, actor, action, reason, details FROM audit_log WHERE engagement_id = $1 ORDER BY id", engagement_id
    )
    return [AuditEntry(**{**dict(r), "details": json.loads(r["details"])}) for r in rows]


async def record_change(
    conn: asyncpg.Connection, *, engagement_id: UUID, actor: str, action: str, details: dict[str, Any]
) -> None:
    """Audit a change and publish it as the engagement event of the same name (one transaction, the caller's)."""
    await record(conn, engagement_id=engagement_id, actor=actor, action=action, details=details)
    await outbox.record(conn, engagement_id=engagement_id, type=action, data=details)
