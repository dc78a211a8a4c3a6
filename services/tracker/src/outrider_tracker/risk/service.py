"""Risk log verbs, including promotion of analyzer findings (deduplicated on kind and key)."""

from uuid import UUID, uuid4

import asyncpg

from outrider_tracker import outbox
from outrider_tracker.audit import service as audit
from outrider_tracker.patch import apply
from outrider_tracker.risk.models import FindingPromotion, RiskCreate, RiskRead, RiskUpdate

COLUMNS = "id, engagement_id, title, likelihood, impact, mitigation, owner, status, source_kind, source_key, created_at"


async def get_all(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> list[RiskRead]:
    """The engagement's risks, newest first."""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM risks WHERE engagement_id = $1 ORDER BY created_at DESC",
                            engagement_id)  # fmt: skip
    return [RiskRead.model_validate(dict(r)) for r in rows]


async def _insert(
    conn: asyncpg.Connection, engagement_id: UUID, risk: RiskCreate, actor: str, source: tuple[str, str] | None
) -> tuple[RiskRead, bool]:
    row = await conn.fetchrow(
        f"INSERT INTO risks (id, engagement_id, title, likelihood, impact, mitigation, owner, source_kind, source_key)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING {COLUMNS}",
        uuid4(), engagement_id, risk.title, risk.likelihood, risk.impact, risk.mitigation, risk.owner,
        *(source or (None, None)),
    )  # fmt: skip
    if row is None:  # already promoted: hand back the existing risk
        existing = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM risks WHERE engagement_id = $1 AND source_kind = $2 AND source_key = $3",
            engagement_id, *source,  # type: ignore[misc]
        )  # fmt: skip
        return RiskRead.model_validate(dict(existing)), False
    created = RiskRead.model_validate(dict(row))
    details: dict[str, object] = {"risk_id": str(created.id), "title": created.title, "impact": created.impact}
    await audit.record(conn, engagement_id=engagement_id, actor=actor, action="risk.opened", details=details)
    await outbox.record(conn, engagement_id=engagement_id, type="risk.opened", data=details)
    return created, True


async def create(pool: asyncpg.Pool, *, engagement_id: UUID, risk_in: RiskCreate, actor: str) -> RiskRead:
    """Open a risk."""
    async with pool.acquire() as conn, conn.transaction():
        return (await _insert(conn, engagement_id, risk_in, actor, None))[0]


async def promote_finding(
    pool: asyncpg.Pool, *, engagement_id: UUID, promotion: FindingPromotion, actor: str
) -> tuple[RiskRead, bool] | None:
    """Open a risk from the newest finding of (rule, key); (risk, created). None when there is no such finding."""
    async with pool.acquire() as conn, conn.transaction():
        finding = await conn.fetchrow(
            "SELECT log_type, window_start, figures FROM findings WHERE engagement_id = $1 AND rule = $2 AND key = $3"
            " ORDER BY window_start DESC LIMIT 1",
            engagement_id, promotion.rule, promotion.key,
        )  # fmt: skip
        if finding is None:
            return None
        risk = RiskCreate(
            title=f"{promotion.rule.replace('_', ' ')}: {promotion.key} ({finding['log_type']}, "
                  f"since {finding['window_start']:%Y-%m-%d %H:%M} UTC)",
            likelihood=promotion.likelihood, impact=promotion.impact, owner=promotion.owner,
            mitigation=f"Evidence: {finding['figures']}",
        )  # fmt: skip
        return await _insert(conn, engagement_id, risk, actor, (promotion.rule, promotion.key))


async def update(
    pool: asyncpg.Pool, *, engagement_id: UUID, risk_id: UUID, risk_in: RiskUpdate, actor: str
) -> RiskRead | None:
    """Change a risk (None when unknown); what changed is audited and published as `risk.updated`."""
    async with pool.acquire() as conn, conn.transaction():
        row, changes = await apply(conn, "risks", COLUMNS, row_id=risk_id, engagement_id=engagement_id,
                                   changes=risk_in.model_dump(exclude_unset=True))  # fmt: skip
        if row is None:
            return None
        risk = RiskRead.model_validate(dict(row))
        if changes:
            details: dict[str, object] = {"risk_id": str(risk_id), "title": risk.title, **changes}
            await audit.record_change(conn, engagement_id=engagement_id, actor=actor, action="risk.updated",
                                      details=details)  # fmt: skip
    return risk
