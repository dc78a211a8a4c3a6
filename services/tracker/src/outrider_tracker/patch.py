"""Partial updates: an absent field stays as it is; `null` clears a field only where the field may be empty."""

from typing import Any
from uuid import UUID

import asyncpg
from pydantic import ValidationInfo


def not_null(value: Any, info: ValidationInfo) -> Any:
    """Field validator for PATCH fields that cannot be cleared (runs only for values the client sent)."""
    if value is None:
        raise ValueError(f"{info.field_name} cannot be null; leave it out to keep it")
    return value


async def apply(
    conn: asyncpg.Connection, table: str, columns: str, *, row_id: UUID, engagement_id: UUID, changes: dict[str, Any]
) -> asyncpg.Record | None:
    """Update one row of an engagement's `table` with `changes` (field names from a model, never from the client);
    the row as it now is, or None when the engagement has no such row."""
    if not changes:
        return await conn.fetchrow(f"SELECT {columns} FROM {table} WHERE id = $1 AND engagement_id = $2 FOR UPDATE",
                                   row_id, engagement_id)  # fmt: skip
    assignments = ", ".join(f"{field} = ${i + 3}" for i, field in enumerate(changes))
    return await conn.fetchrow(
        f"UPDATE {table} SET {assignments} WHERE id = $1 AND engagement_id = $2 RETURNING {columns}",
        row_id, engagement_id, *changes.values(),
    )  # fmt: skip
