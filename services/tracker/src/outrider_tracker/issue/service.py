"""Issues log and expansion opportunity verbs."""

from uuid import UUID, uuid4

import asyncpg

from outrider_tracker.audit import service as audit
from outrider_tracker.issue.models import (
    ExpansionCreate,
    ExpansionRead,
    ExpansionUpdate,
    IssueCreate,
    IssueRead,
    IssueResolve,
    IssueUpdate,
)
from outrider_tracker.patch import apply, locked
from outrider_tracker.transition import already_done

ISSUE = "id, engagement_id, title, severity, owner, status, resolution, created_at, resolved_at"
EXPANSION = "id, engagement_id, title, description, potential_users, status, created_at"


async def get_issues(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> list[IssueRead]:
    """Open issues first, then by age."""
    rows = await conn.fetch(
        f"SELECT {ISSUE} FROM issues WHERE engagement_id = $1 ORDER BY status = 'resolved', created_at", engagement_id
    )
    return [IssueRead.model_validate(dict(r)) for r in rows]


async def create_issue(pool: asyncpg.Pool, *, engagement_id: UUID, issue_in: IssueCreate, actor: str) -> IssueRead:
    """Log an issue."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"INSERT INTO issues (id, engagement_id, title, severity, owner) VALUES ($1, $2, $3, $4, $5)"
            f" RETURNING {ISSUE}",
            uuid4(),
            engagement_id,
            issue_in.title,
            issue_in.severity,
            issue_in.owner,
        )
        issue = IssueRead.model_validate(dict(row))
        await audit.record_change(
            conn,
            engagement_id=engagement_id,
            actor=actor,
            action="issue.opened",
            details={"issue_id": str(issue.id), "title": issue.title, "severity": issue.severity},
        )
    return issue


async def resolve_issue(
    pool: asyncpg.Pool, *, engagement_id: UUID, issue_id: UUID, resolve: IssueResolve, actor: str
) -> IssueRead | None:
    """Mark an issue resolved (None when unknown); resolving it again the same way changes nothing, another way
    raises FinalState."""
    async with pool.acquire() as conn, conn.transaction():
        row = await locked(conn, "issues", ISSUE, row_id=issue_id, engagement_id=engagement_id)
        if row is None:
            return None
        if already_done(row, what="issue", start="open", done="resolved", fields={"resolution": resolve.resolution}):
            return IssueRead.model_validate(dict(row))
        row = await conn.fetchrow(
            f"UPDATE issues SET status = 'resolved', resolution = $2, resolved_at = now() WHERE id = $1"
            f" RETURNING {ISSUE}",
            issue_id,
            resolve.resolution,
        )
        details = {"issue_id": str(issue_id), "resolution": resolve.resolution}
        await audit.record_change(
            conn, engagement_id=engagement_id, actor=actor, action="issue.resolved", details=details
        )
    return IssueRead.model_validate(dict(row))


async def get_expansions(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> list[ExpansionRead]:
    """Expansion opportunities by age."""
    rows = await conn.fetch(
        f"SELECT {EXPANSION} FROM expansions WHERE engagement_id = $1 ORDER BY created_at", engagement_id
    )
    return [ExpansionRead.model_validate(dict(r)) for r in rows]


async def create_expansion(
    pool: asyncpg.Pool, *, engagement_id: UUID, expansion_in: ExpansionCreate, actor: str
) -> ExpansionRead:
    """Record an expansion opportunity."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"INSERT INTO expansions (id, engagement_id, title, description, potential_users)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {EXPANSION}",
            uuid4(),
            engagement_id,
            expansion_in.title,
            expansion_in.description,
            expansion_in.potential_users,
        )
        expansion = ExpansionRead.model_validate(dict(row))
        await audit.record_change(
            conn,
            engagement_id=engagement_id,
            actor=actor,
            action="expansion.opened",
            details={"expansion_id": str(expansion.id), "title": expansion.title},
        )
    return expansion


async def update_issue(
    pool: asyncpg.Pool, *, engagement_id: UUID, issue_id: UUID, issue_in: IssueUpdate, actor: str
) -> IssueRead | None:
    """Change an issue (None when unknown); what changed is audited and published as `issue.updated`."""
    async with pool.acquire() as conn, conn.transaction():
        row, changes = await apply(conn, "issues", ISSUE, row_id=issue_id, engagement_id=engagement_id,
                                   changes=issue_in.model_dump(exclude_unset=True))  # fmt: skip
        if changes:
            await audit.record_change(conn, engagement_id=engagement_id, actor=actor, action="issue.updated",
                                      details={"issue_id": str(issue_id), **changes})  # fmt: skip
    return IssueRead.model_validate(dict(row)) if row else None


async def update_expansion(
    pool: asyncpg.Pool, *, engagement_id: UUID, expansion_id: UUID, expansion_in: ExpansionUpdate, actor: str
) -> ExpansionRead | None:
    """Change an expansion opportunity (None when unknown); what changed is audited and published as
    `expansion.updated`."""
    async with pool.acquire() as conn, conn.transaction():
        row, changes = await apply(conn, "expansions", EXPANSION, row_id=expansion_id, engagement_id=engagement_id,
                                   changes=expansion_in.model_dump(exclude_unset=True))  # fmt: skip
        if changes:
            await audit.record_change(conn, engagement_id=engagement_id, actor=actor, action="expansion.updated",
                                      details={"expansion_id": str(expansion_id), **changes})  # fmt: skip
    return ExpansionRead.model_validate(dict(row)) if row else None
