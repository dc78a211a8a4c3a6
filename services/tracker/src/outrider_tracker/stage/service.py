"""Stage verbs: the checklist (manual and data-driven items), advancing, and the status view."""

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from outrider_tracker import outbox
from outrider_tracker.audit import service as audit
from outrider_tracker.engagement.models import EngagementRead
from outrider_tracker.issue import service as issue_service
from outrider_tracker.playbook import service as playbooks
from outrider_tracker.playbook.models import ChecklistItem, Stage
from outrider_tracker.risk import service as risk_service
from outrider_tracker.stage.health import HealthInputs, health, health_counts
from outrider_tracker.stage.models import (
    ChecklistItemState,
    EngagementStatus,
    FindingSummary,
    StageChange,
    StageView,
)
from outrider_tracker.stats import service as stats
from outrider_tracker.touchpoint import service as touchpoint_service

GITLAB_LOG_TYPES = ("production_json", "api_json", "gitaly", "sidekiq")


class NotAllowed(ValueError):
    """The change is not allowed in the engagement's current state (mapped to 409)."""

    def __init__(self, detail: str, missing: list[str] | None = None) -> None:
        super().__init__(detail)
        self.detail, self.missing = detail, missing or []


async def _data_checks(
    conn: asyncpg.Connection | asyncpg.Pool, engagement_id: UUID
) -> dict[str, tuple[str | None, list[str]]]:
    """What the data says for each automatic check: a description of what satisfied it (or None), and the log types
    it still lacks."""
    received = {
        r["log_type"]
        for r in await conn.fetch(
            "SELECT DISTINCT log_type FROM log_chunk_types WHERE engagement_id = $1", engagement_id
        )
    }
    analysed = {
        r["log_type"]
        for r in await conn.fetch("SELECT DISTINCT log_type FROM log_stats WHERE engagement_id = $1", engagement_id)
    }

    def every(seen: set[str], what: str) -> tuple[str | None, list[str]]:
        missing = [t for t in GITLAB_LOG_TYPES if t not in seen]
        return None if missing else f"{what}: {', '.join(GITLAB_LOG_TYPES)}", missing

    return {"logs_received": every(received, "logs received"), "logs_analysed": every(analysed, "stats computed")}


async def get_checklist(
    conn: asyncpg.Connection | asyncpg.Pool, *, engagement: EngagementRead, stage: Stage
) -> list[ChecklistItemState]:
    """The stage's items with their state; automatic items are evaluated against the data now."""
    ticked = {
        r["item_id"]: r
        for r in await conn.fetch(
            "SELECT item_id, done_at, done_by, note FROM checklist_items WHERE engagement_id = $1 AND stage = $2",
            engagement.id,
            stage.id,
        )
    }
    auto = await _data_checks(conn, engagement.id) if any(i.auto for i in stage.checklist) else {}
    items = []
    for item in stage.checklist:
        if item.auto:
            satisfied, missing = auto[item.auto]
            items.append(ChecklistItemState(id=item.id, title=item.title, auto=item.auto, done=satisfied is not None,
                                            satisfied_by=satisfied, missing=missing))  # fmt: skip
        else:
            row = ticked.get(item.id)
            extra = {k: row[k] for k in ("done_at", "done_by", "note")} if row else {}
            items.append(ChecklistItemState(id=item.id, title=item.title, auto=None, done=row is not None, **extra))
    return items


def _item(stage: Stage, item_id: str) -> ChecklistItem:
    for item in stage.checklist:
        if item.id == item_id:
            return item
    raise KeyError(item_id)


async def set_item(
    pool: asyncpg.Pool, *, engagement: EngagementRead, item_id: str, done: bool, note: str | None, actor: str
) -> list[ChecklistItemState]:
    """Tick or untick a manual item of the current stage (KeyError for an item the stage lacks)."""
    stage = playbooks.get_all()[engagement.playbook_id].stage(engagement.stage)
    item = _item(stage, item_id)
    if item.auto:
        raise NotAllowed(f"'{item.title}' completes itself from the engagement's data ({item.auto})")
    async with pool.acquire() as conn, conn.transaction():
        if done:
            changed = await conn.fetchval(
                "INSERT INTO checklist_items (engagement_id, stage, item_id, done_by, note) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT DO NOTHING RETURNING true",
                engagement.id,
                stage.id,
                item_id,
                actor,
                note,
            )
        else:
            changed = await conn.fetchval(
                "DELETE FROM checklist_items WHERE engagement_id = $1 AND stage = $2 AND item_id = $3 RETURNING true",
                engagement.id,
                stage.id,
                item_id,
            )
        if changed:  # ticking a ticked item is a no-op, not a second event
            action = "checklist.item_done" if done else "checklist.item_reopened"
            details: dict[str, object] = {"stage": stage.id, "item": item_id}
            await audit.record(
                conn, engagement_id=engagement.id, actor=actor, action=action, reason=note, details=details
            )
            await outbox.record(conn, engagement_id=engagement.id, type=action, data=details)
        return await get_checklist(conn, engagement=engagement, stage=stage)


async def advance(
    pool: asyncpg.Pool, *, engagement: EngagementRead, force: bool, reason: str | None, actor: str
) -> StageChange:
    """Move to the next stage if its exit criteria are met (or forced with a reason); raises NotAllowed."""
    playbook = playbooks.get_all()[engagement.playbook_id]
    stage = playbook.stage(engagement.stage)
    target = playbook.next_stage(stage.id)
    if target is None:
        raise NotAllowed(f"'{stage.name}' is the last stage of {playbook.name}")
    async with pool.acquire() as conn, conn.transaction():
        # Lock the engagement: two concurrent advances must not both pass the check.
        current = await conn.fetchval("SELECT stage FROM engagements WHERE id = $1 FOR UPDATE", engagement.id)
        if current != stage.id:
            raise NotAllowed(f"the engagement moved to '{current}' meanwhile; reload and retry")
        items = await get_checklist(conn, engagement=engagement, stage=stage)
        missing = playbooks.missing_exit_criteria(stage, {i.id for i in items if i.done})
        if missing and not force:
            raise NotAllowed(f"exit criteria of '{stage.name}' not met", missing)
        if missing and not reason:
            raise NotAllowed("forcing past unmet exit criteria needs a reason", missing)
        await conn.execute(
            "UPDATE engagements SET stage = $2, stage_entered_at = now(), updated_at = now(), version = version + 1"
            " WHERE id = $1",
            engagement.id,
            target.id,
        )
        details = {"from": stage.id, "to": target.id, "forced": bool(missing), "missing": missing,
                   "expected_days": target.expected_days}  # fmt: skip
        await audit.record(
            conn, engagement_id=engagement.id, actor=actor, action="stage.advanced", reason=reason, details=details
        )
        await outbox.record(conn, engagement_id=engagement.id, type="stage.advanced", data=details)
    return StageChange(
        engagement_id=engagement.id, from_stage=stage.id, to_stage=target.id, forced=bool(missing), missing=missing
    )


async def announce_current(conn: asyncpg.Connection, *, engagement: EngagementRead) -> None:
    """Publish the engagement's current stage again, as `stage.current` (with `stage_entered_at`).

    For an engagement reopened: its close ended the notifier's stalled-stage reminder and it planned none for a stage
    entered since; this event plans it again, due `expected_days` after the stage was entered. Call with the
    engagement locked (as read under that lock). Not audited: the stage did not change.
    """
    stage = playbooks.get_all()[engagement.playbook_id].stage(engagement.stage)
    data = {"stage": stage.id, "expected_days": stage.expected_days,
            "stage_entered_at": engagement.stage_entered_at.isoformat()}  # fmt: skip
    await outbox.record(conn, engagement_id=engagement.id, type="stage.current", data=data)


async def get_status(pool: asyncpg.Pool, *, engagement: EngagementRead, overdue_grace: timedelta) -> EngagementStatus:
    """Stage, checklist, blockers, log stats summary and findings of one engagement."""
    playbook = playbooks.get_all()[engagement.playbook_id]
    stage = playbook.stage(engagement.stage)
    items = await get_checklist(pool, engagement=engagement, stage=stage)
    keys = (await stats.get_key_stats(pool, engagement_id=engagement.id, log_type=None, since=None, until=None)).keys
    findings = await pool.fetch(
        "SELECT rule, log_type, key, window_start, figures FROM findings WHERE engagement_id = $1"
        " ORDER BY window_start DESC, rule LIMIT 20",
        engagement.id,
    )
    days = (datetime.now(UTC) - engagement.stage_entered_at).total_seconds() / 86_400
    following = playbook.next_stage(stage.id)
    counts = await pool.fetchrow(f"SELECT {health_counts('$2')} FROM engagements e WHERE e.id = $1", engagement.id,
                                 overdue_grace)  # fmt: skip
    touchpoints = [t for t in await touchpoint_service.get_all(pool, engagement_id=engagement.id)
                   if t.status == "scheduled"]  # fmt: skip
    now = datetime.now(UTC)
    upcoming = [t for t in touchpoints if t.scheduled_at >= now]
    risks = [r for r in await risk_service.get_all(pool, engagement_id=engagement.id) if r.status == "open"]
    issues = [i for i in await issue_service.get_issues(pool, engagement_id=engagement.id) if i.status == "open"]
    score, reasons = health(HealthInputs(counts["overdue"], counts["risks"], counts["findings"], days,
                                         stage.expected_days))  # fmt: skip
    return EngagementStatus(
        engagement=engagement,
        playbook=playbook.name,
        stage=StageView(
            id=stage.id,
            name=stage.name,
            entered_at=engagement.stage_entered_at,
            days_in_stage=days,
            expected_days=stage.expected_days,
            stalled=days > stage.expected_days,
            next_stage=following.id if following else None,
        ),
        checklist=items,
        progress=sum(i.done for i in items) / len(items) if items else 1.0,
        blocking=playbooks.missing_exit_criteria(stage, {i.id for i in items if i.done}) if following else [],
        requests_counted=sum(k.count for k in keys),
        top_keys=keys[:5],
        findings=[FindingSummary(**{**dict(f), "figures": json.loads(f["figures"])}) for f in findings],
        next_touchpoint=upcoming[0] if upcoming else None,
        overdue_touchpoints=[t for t in touchpoints if touchpoint_service.is_overdue(t, now=now, grace=overdue_grace)],
        open_risks=risks,
        open_issues=issues,
        health=score,
        health_reasons=reasons,
    )
