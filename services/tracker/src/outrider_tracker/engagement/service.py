"""Engagement verbs (SQL beside the module that owns the table)."""

import json
from datetime import timedelta
from uuid import UUID, uuid4

import asyncpg

from outrider_tracker import outbox
from outrider_tracker.audit import service as audit
from outrider_tracker.engagement.models import EngagementCreate, EngagementRead, EngagementUpdate
from outrider_tracker.handoff import service as handoffs
from outrider_tracker.playbook import service as playbooks
from outrider_tracker.stage import service as stages
from outrider_tracker.token import service as tokens
from outrider_tracker.touchpoint import service as touchpoints

COLUMNS = (
    "id, name, customer, playbook_id, stage, stage_entered_at, slack_channel, status, created_at, updated_at, version,"
    " owners, links, current_users, anticipated_users, target_destination"
)
JSONB = ("owners", "links")


class StaleVersion(ValueError):
    """The engagement changed since the caller read it."""


async def get(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> EngagementRead | None:
    """The engagement with this id, or None."""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM engagements WHERE id = $1", engagement_id)
    return EngagementRead.model_validate(dict(row)) if row else None


async def get_all(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    playbook_id: str | None = None,
    stage: str | None = None,
    status: str | None = None,
    overdue: bool | None = None,
    owner: str | None = None,
    target: str | None = None,
    limit: int = 100,
    offset: int = 0,
    overdue_grace: timedelta,
) -> list[EngagementRead]:
    """Engagements matching every filter given, newest first, one page; `overdue` means a touchpoint still scheduled
    more than `overdue_grace` after its time."""
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM engagements e
        WHERE ($1::text IS NULL OR playbook_id = $1) AND ($2::text IS NULL OR stage = $2)
          AND ($3::text IS NULL OR status = $3)
          AND ($4::boolean IS NULL OR $4 = EXISTS (SELECT 1 FROM touchpoints t WHERE t.engagement_id = e.id
                                                  AND {touchpoints.overdue_sql("$9")}))
          AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM jsonb_each_text(e.owners) o WHERE o.value = $5))
          AND ($6::text IS NULL OR target_destination = $6)
        ORDER BY created_at DESC, id LIMIT $7 OFFSET $8""",
        playbook_id, stage, status, overdue, owner, target, limit, offset, overdue_grace,
    )  # fmt: skip
    return [EngagementRead.model_validate(dict(r)) for r in rows]


async def create(pool: asyncpg.Pool, *, engagement_in: EngagementCreate, actor: str) -> EngagementRead:
    """Open a new engagement at its playbook's first stage; audit and event in the same transaction."""
    playbook = playbooks.get_all()[engagement_in.playbook_id]
    details = engagement_in.model_dump(mode="json", include=set(JSONB))
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO engagements (id, name, customer, playbook_id, stage, slack_channel, owners, links,"
            " current_users, anticipated_users, target_destination)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}",
            uuid4(),
            engagement_in.name,
            engagement_in.customer,
            playbook.id,
            playbook.stages[0].id,
            engagement_in.slack_channel,
            *(json.dumps(details[k]) for k in JSONB),
            engagement_in.current_users,
            engagement_in.anticipated_users,
            engagement_in.target_destination,
        )
        assert row is not None  # INSERT … RETURNING always returns the row
        engagement = EngagementRead.model_validate(dict(row))
        await outbox.record(
            conn,
            engagement_id=engagement.id,
            type="engagement.created",
            data={
                "name": engagement.name,
                "customer": engagement.customer,
                "playbook_id": playbook.id,
                "slack_channel": engagement.slack_channel,
                "owners": dict(engagement.owners),
                "stage": engagement.stage,
                "expected_days": playbook.stages[0].expected_days,
            },
        )
        await audit.record(
            conn,
            engagement_id=engagement.id,
            actor=actor,
            action="engagement.created",
            details={"playbook_id": playbook.id, "stage": engagement.stage},
        )
    return engagement


async def update(
    pool: asyncpg.Pool, *, engagement_id: UUID, engagement_in: EngagementUpdate, actor: str
) -> EngagementRead | None:
    """Apply the given fields if `version` is current (None when unknown; StaleVersion when changed since); a field
    sent with the value it has changes nothing, and a PATCH that changes nothing keeps the version, records nothing."""
    requested = engagement_in.model_dump(mode="json", exclude_unset=True, exclude={"version"})
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(f"SELECT {COLUMNS} FROM engagements WHERE id = $1 FOR UPDATE", engagement_id)
        if row is None:
            return None
        current = EngagementRead.model_validate(dict(row))
        if current.version != engagement_in.version:
            raise StaleVersion(
                f"engagement is at version {current.version}, not {engagement_in.version}: reload and retry"
            )
        held = current.model_dump(mode="json")
        changes = {field: value for field, value in requested.items() if held[field] != value}
        if not changes:
            return current
        assignments = "".join(f", {field} = ${i + 2}" for i, field in enumerate(changes))
        row = await conn.fetchrow(
            f"UPDATE engagements SET version = version + 1, updated_at = now(){assignments} WHERE id = $1"
            f" RETURNING {COLUMNS}",
            engagement_id,
            *(json.dumps(v) if k in JSONB else v for k, v in changes.items()),
        )
        engagement = EngagementRead.model_validate(dict(row))
        details: dict[str, object] = {**changes, "version": engagement.version}
        await audit.record(conn, engagement_id=engagement_id, actor=actor, action="engagement.updated", details=details)
        await outbox.record(conn, engagement_id=engagement_id, type="engagement.updated", data=details)
        if changes.get("status") == "closed":  # its customer's shippers can no longer add to its logs
            await tokens.revoke_all(conn, engagement_id=engagement_id, actor=actor, why="engagement closed")
        if current.status == "closed" and "status" in changes:
            # Closing ended its reminders: reopened, what they were about is announced again (after the event
            # reopening it) — its touchpoints, pending hand-offs, open tech reviews and current stage.
            await touchpoints.announce_scheduled(conn, engagement_id=engagement_id, playbook_id=current.playbook_id)
            await handoffs.announce_open(conn, engagement_id=engagement_id)
            await stages.announce_current(conn, engagement=engagement)
    return engagement
