"""Hand-offs (refused while the receiving team's required fields are missing) and tech-review requests."""

from uuid import UUID, uuid4

import asyncpg

from outrider_tracker import outbox
from outrider_tracker.audit import service as audit
from outrider_tracker.handoff.models import (
    HandoffCreate,
    HandoffRead,
    TechReviewCreate,
    TechReviewDecision,
    TechReviewRead,
)
from outrider_tracker.patch import locked
from outrider_tracker.profile import service as profiles
from outrider_tracker.profile.models import REQUIRED_FOR_ADVISOR, missing_fields
from outrider_tracker.transition import already_done

HANDOFF = "id, engagement_id, from_team, to_team, notes, status, created_at, accepted_at"
REVIEW = (
    "id, engagement_id, gap, decision_needed_by, requirement, customer_expectation, consequence_if_unmet,"
    " status, decision, created_at, decided_at"
)


class MissingFields(ValueError):
    """The receiving team needs fields the engagement does not have yet."""

    def __init__(self, detail: str, missing: list[str]) -> None:
        super().__init__(detail)
        self.detail, self.missing = detail, missing


async def request_handoff(
    pool: asyncpg.Pool, *, engagement_id: UUID, handoff: HandoffCreate, actor: str
) -> HandoffRead:
    """Open a hand-off; a technical advisor takes over only with a complete deployment profile."""
    if handoff.to_team == "technical_advisor":
        missing = missing_fields(await profiles.get(pool, engagement_id=engagement_id), REQUIRED_FOR_ADVISOR)
        if missing:
            raise MissingFields("the technical advisor needs a complete deployment profile", missing)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"INSERT INTO handoffs (id, engagement_id, from_team, to_team, notes) VALUES ($1, $2, $3, $4, $5)"
            f" RETURNING {HANDOFF}",
            uuid4(),
            engagement_id,
            handoff.from_team,
            handoff.to_team,
            handoff.notes,
        )
        created = HandoffRead.model_validate(dict(row))
        await audit.record_change(
            conn, engagement_id=engagement_id, actor=actor, action="handoff.requested", details=_handoff(created)
        )
    return created


def _handoff(handoff: HandoffRead) -> dict[str, object]:
    """A hand-off as its events carry it: the notifier nudges the receiving team from this."""
    return {"handoff_id": str(handoff.id), "from": handoff.from_team, "to": handoff.to_team}


def _review(review: TechReviewRead) -> dict[str, object]:
    """A tech review as its events carry it: the notifier reminds of the decision from this."""
    return {"review_id": str(review.id), "gap": review.gap, "decision_needed_by": review.decision_needed_by.isoformat()}


async def announce_open(conn: asyncpg.Connection, *, engagement_id: UUID) -> None:
    """Publish every pending hand-off again, as `handoff.pending` (with `requested_at`), and every open tech review,
    as `tech_review.open`.

    For an engagement reopened: its close ended the notifier's reminders and it planned none for those requested
    since, and these events plan them (reviving the cancelled ones, due when they were due). Call with the engagement
    locked; the rows are locked too, so an acceptance or decision in flight is published before this. Not audited:
    they did not change, the engagement did.
    """
    rows = await conn.fetch(
        f"SELECT {HANDOFF} FROM handoffs WHERE engagement_id = $1 AND status = 'pending' ORDER BY created_at, id"
        " FOR SHARE",
        engagement_id,
    )
    for row in rows:
        handoff = HandoffRead.model_validate(dict(row))
        data = {**_handoff(handoff), "requested_at": handoff.created_at.isoformat()}
        await outbox.record(conn, engagement_id=engagement_id, type="handoff.pending", data=data)
    rows = await conn.fetch(
        f"SELECT {REVIEW} FROM tech_reviews WHERE engagement_id = $1 AND status = 'open' ORDER BY created_at, id"
        " FOR SHARE",
        engagement_id,
    )
    for row in rows:
        review = TechReviewRead.model_validate(dict(row))
        await outbox.record(conn, engagement_id=engagement_id, type="tech_review.open", data=_review(review))


async def accept_handoff(
    pool: asyncpg.Pool, *, engagement_id: UUID, handoff_id: UUID, actor: str
) -> HandoffRead | None:
    """The receiving team accepts (None when unknown); accepting it again changes nothing."""
    async with pool.acquire() as conn, conn.transaction():
        row = await locked(conn, "handoffs", HANDOFF, row_id=handoff_id, engagement_id=engagement_id)
        if row is None:
            return None
        if already_done(row, what="hand-off", start="pending", done="accepted", fields={}):
            return HandoffRead.model_validate(dict(row))
        row = await conn.fetchrow(
            f"UPDATE handoffs SET status = 'accepted', accepted_at = now() WHERE id = $1 RETURNING {HANDOFF}",
            handoff_id,
        )
        await audit.record_change(
            conn,
            engagement_id=engagement_id,
            actor=actor,
            action="handoff.accepted",
            details={"handoff_id": str(handoff_id)},
        )
    return HandoffRead.model_validate(dict(row))


async def get_handoffs(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> list[HandoffRead]:
    """Hand-offs, oldest first."""
    rows = await conn.fetch(
        f"SELECT {HANDOFF} FROM handoffs WHERE engagement_id = $1 ORDER BY created_at", engagement_id
    )
    return [HandoffRead.model_validate(dict(r)) for r in rows]


async def request_review(
    pool: asyncpg.Pool, *, engagement_id: UUID, review: TechReviewCreate, actor: str
) -> TechReviewRead:
    """Open a tech-review request."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"INSERT INTO tech_reviews (id, engagement_id, gap, decision_needed_by, requirement, customer_expectation,"
            f" consequence_if_unmet) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {REVIEW}",
            uuid4(),
            engagement_id,
            review.gap,
            review.decision_needed_by,
            review.requirement,
            review.customer_expectation,
            review.consequence_if_unmet,
        )
        created = TechReviewRead.model_validate(dict(row))
        await audit.record_change(
            conn, engagement_id=engagement_id, actor=actor, action="tech_review.requested", details=_review(created)
        )
    return created


async def decide_review(
    pool: asyncpg.Pool, *, engagement_id: UUID, review_id: UUID, decision: TechReviewDecision, actor: str
) -> TechReviewRead | None:
    """Record the decision (None when unknown); the same decision again changes nothing, another one raises
    FinalState."""
    async with pool.acquire() as conn, conn.transaction():
        row = await locked(conn, "tech_reviews", REVIEW, row_id=review_id, engagement_id=engagement_id)
        if row is None:
            return None
        if already_done(row, what="tech review", start="open", done="decided", fields={"decision": decision.decision}):
            return TechReviewRead.model_validate(dict(row))
        row = await conn.fetchrow(
            f"UPDATE tech_reviews SET status = 'decided', decision = $2, decided_at = now() WHERE id = $1"
            f" RETURNING {REVIEW}",
            review_id,
            decision.decision,
        )
        await audit.record_change(
            conn,
            engagement_id=engagement_id,
            actor=actor,
            action="tech_review.decided",
            details={"review_id": str(review_id), "decision": decision.decision},
        )
    return TechReviewRead.model_validate(dict(row))


async def get_reviews(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> list[TechReviewRead]:
    """Tech-review requests, oldest first."""
    rows = await conn.fetch(
        f"SELECT {REVIEW} FROM tech_reviews WHERE engagement_id = $1 ORDER BY created_at", engagement_id
    )
    return [TechReviewRead.model_validate(dict(r)) for r in rows]
