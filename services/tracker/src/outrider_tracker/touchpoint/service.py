"""Touchpoint verbs; each change is audited and published as an engagement event."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from outrider_tracker import outbox
from outrider_tracker.audit import service as audit
from outrider_tracker.patch import apply, locked
from outrider_tracker.playbook import service as playbooks
from outrider_tracker.touchpoint.models import (
    TouchpointCancel,
    TouchpointCreate,
    TouchpointHeld,
    TouchpointRead,
    TouchpointUpdate,
)
from outrider_tracker.transition import FinalState, already_done

COLUMNS = "id, engagement_id, title, scheduled_at, attendees, status, held_at, notes"


def is_overdue(touchpoint: TouchpointRead, *, now: datetime, grace: timedelta) -> bool:
    """Still scheduled longer than `grace` after its time: when the notifier posts its overdue reminder."""
    return touchpoint.status == "scheduled" and touchpoint.scheduled_at < now - grace


def overdue_sql(grace: str) -> str:
    """`is_overdue` as SQL on a touchpoint row `t`; `grace` names the interval parameter (`$1`, a timedelta)."""
    return f"(t.status = 'scheduled' AND t.scheduled_at < now() - {grace}::interval)"


async def get_all(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> list[TouchpointRead]:
    """The engagement's touchpoints by date."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM touchpoints WHERE engagement_id = $1 ORDER BY scheduled_at", engagement_id
    )
    return [TouchpointRead.model_validate(dict(r)) for r in rows]


async def _create(conn: asyncpg.Connection, engagement_id: UUID, data: TouchpointCreate, actor: str) -> TouchpointRead:
    row = await conn.fetchrow(
        f"INSERT INTO touchpoints (id, engagement_id, title, scheduled_at, attendees) VALUES ($1, $2, $3, $4, $5)"
        f" RETURNING {COLUMNS}",
        uuid4(), engagement_id, data.title, data.scheduled_at, data.attendees,
    )  # fmt: skip
    touchpoint = TouchpointRead.model_validate(dict(row))
    await _announce(conn, touchpoint, actor, "touchpoint.scheduled")
    return touchpoint


def _schedule(touchpoint: TouchpointRead, playbook_id: str) -> dict[str, object]:
    """A touchpoint's schedule as its events carry it: the notifier plans its reminders from this."""
    return {
        "touchpoint_id": str(touchpoint.id),
        "title": touchpoint.title,
        "scheduled_at": touchpoint.scheduled_at.isoformat(),
        "reminder_lead_hours": playbooks.get_all()[playbook_id].reminder_lead_hours,
    }


async def _announce(conn: asyncpg.Connection, touchpoint: TouchpointRead, actor: str, action: str) -> None:
    """Audit and publish a touchpoint's schedule: the notifier plans its reminders from this event."""
    playbook_id = await conn.fetchval("SELECT playbook_id FROM engagements WHERE id = $1", touchpoint.engagement_id)
    await audit.record_change(conn, engagement_id=touchpoint.engagement_id, actor=actor, action=action,
                              details=_schedule(touchpoint, playbook_id))  # fmt: skip


async def announce_scheduled(conn: asyncpg.Connection, *, engagement_id: UUID, playbook_id: str) -> None:
    """Publish every still-scheduled touchpoint's schedule again, as `touchpoint.updated`.

    For an engagement reopened: its close ended the notifier's reminders and it planned none for touchpoints
    scheduled since, and this event plans them (reviving the cancelled ones). Call with the engagement locked; the
    touchpoints are locked too, so a change to one in flight is published before this, not overtaken by an older
    time. Not audited: the touchpoints did not change, the engagement did.
    """
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM touchpoints WHERE engagement_id = $1 AND status = 'scheduled'"
        " ORDER BY scheduled_at, id FOR SHARE",
        engagement_id,
    )
    for row in rows:
        details = _schedule(TouchpointRead.model_validate(dict(row)), playbook_id)
        await outbox.record(conn, engagement_id=engagement_id, type="touchpoint.updated", data=details)


async def create(
    pool: asyncpg.Pool, *, engagement_id: UUID, touchpoint_in: TouchpointCreate, actor: str
) -> TouchpointRead:
    """Schedule a touchpoint."""
    async with pool.acquire() as conn, conn.transaction():
        return await _create(conn, engagement_id, touchpoint_in, actor)


async def update(
    pool: asyncpg.Pool, *, engagement_id: UUID, touchpoint_id: UUID, touchpoint_in: TouchpointUpdate, actor: str
) -> TouchpointRead | None:
    """Change a scheduled touchpoint (None when unknown); sending what is already there changes nothing, changing a
    held or cancelled one raises FinalState."""
    async with pool.acquire() as conn, conn.transaction():
        moved_from = await conn.fetchval("SELECT scheduled_at FROM touchpoints WHERE id = $1 AND engagement_id = $2"
                                         " FOR UPDATE", touchpoint_id, engagement_id)  # fmt: skip
        row, changes = await apply(conn, "touchpoints", COLUMNS, row_id=touchpoint_id, engagement_id=engagement_id,
                                   changes=touchpoint_in.model_dump(exclude_unset=True))  # fmt: skip
        if row is None:
            return None
        if changes and row["status"] != "scheduled":  # the raise rolls the update back
            raise FinalState(f"touchpoint is already {row['status']}")
        touchpoint = TouchpointRead.model_validate(dict(row))
        if changes:
            # The event carries the schedule the notifier plans from; the audit entry what changed, and whence.
            playbook_id = await conn.fetchval("SELECT playbook_id FROM engagements WHERE id = $1", engagement_id)
            schedule = _schedule(touchpoint, playbook_id)
            details = {**schedule, **touchpoint.model_dump(mode="json", include=set(changes))}
            if "scheduled_at" in changes:
                details["moved_from"] = moved_from.isoformat()
            await audit.record(conn, engagement_id=engagement_id, actor=actor, action="touchpoint.updated",
                               details=details)  # fmt: skip
            await outbox.record(conn, engagement_id=engagement_id, type="touchpoint.updated", data=schedule)
        return touchpoint


async def cancel(
    pool: asyncpg.Pool, *, engagement_id: UUID, touchpoint_id: UUID, cancel_in: TouchpointCancel, actor: str
) -> TouchpointRead | None:
    """Cancel a scheduled touchpoint (None when unknown); cancelling it again for the same reason changes nothing,
    anything else once held or cancelled raises FinalState."""
    async with pool.acquire() as conn, conn.transaction():
        row = await locked(conn, "touchpoints", COLUMNS, row_id=touchpoint_id, engagement_id=engagement_id)
        if row is None:
            return None
        if already_done(row, what="touchpoint", start="scheduled", done="cancelled",
                        fields={"notes": cancel_in.reason}):  # fmt: skip
            return TouchpointRead.model_validate(dict(row))
        row = await conn.fetchrow(
            f"UPDATE touchpoints SET status = 'cancelled', notes = $2 WHERE id = $1 RETURNING {COLUMNS}",
            touchpoint_id, cancel_in.reason,
        )  # fmt: skip
        touchpoint = TouchpointRead.model_validate(dict(row))
        details: dict[str, object] = {"touchpoint_id": str(touchpoint_id), "title": touchpoint.title}
        await audit.record(conn, engagement_id=engagement_id, actor=actor, action="touchpoint.cancelled",
                           reason=cancel_in.reason, details=details)  # fmt: skip
        await outbox.record(conn, engagement_id=engagement_id, type="touchpoint.cancelled", data=details)
        return touchpoint


async def hold(
    pool: asyncpg.Pool, *, engagement_id: UUID, touchpoint_id: UUID, held: TouchpointHeld, actor: str
) -> TouchpointRead | None:
    """Mark a scheduled touchpoint held (None when unknown); schedules the next one when asked. Holding it again with
    the same notes (and time, if given) changes nothing and schedules no second follow-up; anything else once held
    or cancelled raises FinalState."""
    same = {"notes": held.notes, **({"held_at": held.held_at} if held.held_at else {})}  # no time given: any time
    async with pool.acquire() as conn, conn.transaction():
        # The engagement before the touchpoint, as a reopening locks them (a follow-up's insert would lock it after).
        await conn.execute("SELECT FROM engagements WHERE id = $1 FOR KEY SHARE", engagement_id)
        row = await locked(conn, "touchpoints", COLUMNS, row_id=touchpoint_id, engagement_id=engagement_id)
        if row is None:
            return None
        if already_done(row, what="touchpoint", start="scheduled", done="held", fields=same):
            return TouchpointRead.model_validate(dict(row))
        updated = await conn.fetchrow(
            f"UPDATE touchpoints SET status = 'held', held_at = $2, notes = $3 WHERE id = $1 RETURNING {COLUMNS}",
            touchpoint_id, held.held_at or datetime.now(UTC), held.notes,
        )  # fmt: skip
        touchpoint = TouchpointRead.model_validate(dict(updated))
        details: dict[str, object] = {"touchpoint_id": str(touchpoint_id), "title": touchpoint.title}
        await audit.record(conn, engagement_id=engagement_id, actor=actor, action="touchpoint.held", details=details)
        await outbox.record(conn, engagement_id=engagement_id, type="touchpoint.held", data=details)
        if held.next_scheduled_at:
            follow_up = TouchpointCreate(title=touchpoint.title, scheduled_at=held.next_scheduled_at,
                                         attendees=touchpoint.attendees)  # fmt: skip
            await _create(conn, engagement_id, follow_up, actor)
        return touchpoint
