"""Changing one row of an engagement's table: lock it, then write only what differs. An absent field stays as it is;
`null` clears a field only where the field may be empty."""

from typing import Any
from uuid import UUID

import asyncpg
from pydantic import ValidationInfo


def not_null(value: Any, info: ValidationInfo) -> Any:
    """Field validator for PATCH fields that cannot be cleared (runs only for values the client sent)."""
    if value is None:
        raise ValueError(f"{info.field_name} cannot be null; leave it out to keep it")
    return value


async def locked(
    conn: asyncpg.Connection, table: str, columns: str, *, row_id: UUID, engagement_id: UUID
) -> asyncpg.Record | None:
    """One row of an engagement's `table`, locked until the transaction ends; None when the engagement has no such
    row. Read this way, the row cannot change between the check of its state and the write."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {columns} FROM {table} WHERE id = $1 AND engagement_id = $2 FOR UPDATE", row_id, engagement_id
    )
    return row


async def apply(
    conn: asyncpg.Connection, table: str, columns: str, *, row_id: UUID, engagement_id: UUID, changes: dict[str, Any]
) -> tuple[asyncpg.Record | None, dict[str, Any]]:
    """Update one row of an engagement's `table` with those `changes` it does not hold yet (field names from a model,
    never from the client): the row as it now is and what changed, or (None, {}) when the engagement has no such row.
    What changed is what the caller audits: sending a value that is already there records nothing."""
    row = await locked(conn, table, columns, row_id=row_id, engagement_id=engagement_id)
    if row is None:
        return None, {}
    changed = {field: value for field, value in changes.items() if row[field] != value}
    if not changed:
        return row, changed
    assignments = ", ".join(f"{field} = ${i + 2}" for i, field in enumerate(changed))
    updated = await conn.fetchrow(
        f"UPDATE {table} SET {assignments} WHERE id = $1 RETURNING {columns}", row_id, *changed.values()
    )
    return updated, changed
