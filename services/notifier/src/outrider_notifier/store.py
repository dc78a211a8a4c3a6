"""SQL of the notifier's tables: reminders, their deliveries, and what it knows of engagements."""

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from opentelemetry import propagate

from outrider_notifier.reminders import Planned


async def remember_engagement(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    engagement_id: UUID,
    name: str,
    customer: str,
    channel: str | None,
    owners: dict[str, str],
) -> None:
    """Keep the name, customer, channel and owners messages about this engagement need."""
    await conn.execute(
        "INSERT INTO notifier_engagements (engagement_id, name, customer, slack_channel, owners)"
        " VALUES ($1, $2, $3, $4, $5::jsonb)"
        " ON CONFLICT (engagement_id) DO UPDATE SET name = $2, customer = $3, slack_channel = $4, owners = $5::jsonb",
        engagement_id,
        name,
        customer,
        channel,
        json.dumps(owners),
    )


async def update_engagement(
    conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID, changes: dict[str, Any]
) -> None:
    """Apply an `engagement.updated` event's changes the notifier cares about."""
    if "slack_channel" in changes:
        await conn.execute("UPDATE notifier_engagements SET slack_channel = $2 WHERE engagement_id = $1",
                           engagement_id, changes["slack_channel"])  # fmt: skip
    if "owners" in changes:
        await conn.execute("UPDATE notifier_engagements SET owners = $2::jsonb WHERE engagement_id = $1",
                           engagement_id, json.dumps(changes["owners"]))  # fmt: skip


async def schedule(
    conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID, planned: Planned, revive: bool = False
) -> bool:
    """Store a reminder unless one with its idempotency key exists; True when new. With `revive` (the event
    re-plans its subject), a cancelled one comes back pending with this plan; one sent or being sent never does."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # the event's trace, continued by the Slack post however much later it is due
    inserted = await conn.fetchval(
        """INSERT INTO reminders
            (id, idempotency_key, engagement_id, kind, subject, due_at, next_attempt_at, payload, trace_context)
        VALUES ($1, $2, $3, $4, $5, $6, $6, $7::jsonb, $8::jsonb)
        ON CONFLICT (idempotency_key) DO UPDATE
            SET status = 'pending', due_at = $6, next_attempt_at = $6, payload = $7::jsonb, trace_context = $8::jsonb
            WHERE $9::boolean AND reminders.status = 'cancelled'
        RETURNING true""",
        uuid4(),
        planned.idempotency_key,
        engagement_id,
        planned.kind,
        planned.subject,
        planned.due_at,
        json.dumps(planned.payload),
        json.dumps(carrier),
        revive,
    )
    return bool(inserted)


async def cancel(
    conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID, subject: str, keep: Sequence[str] = ()
) -> int:
    """Cancel pending reminders about `subject` except those whose idempotency key is in `keep` (what the same
    event plans again, so a redelivered reschedule keeps its new reminders); returns how many."""
    result = await conn.execute(
        "UPDATE reminders SET status = 'cancelled' WHERE engagement_id = $1 AND subject = $2 AND status = 'pending'"
        " AND NOT idempotency_key = ANY($3::text[])",
        engagement_id,
        subject,
        list(keep),
    )
    return int(result.split()[-1])


CLAIM = """
UPDATE reminders r SET status = 'sending', attempts = r.attempts + 1, claimed_at = now()
FROM (
    SELECT id, status AS was FROM reminders
    WHERE (status = 'pending' AND next_attempt_at <= $1 AND NOT kind = ANY($4::text[]))
       OR (status = 'sending' AND claimed_at < $1 - make_interval(secs => $2))
    ORDER BY next_attempt_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
) due
WHERE r.id = due.id
RETURNING r.id, r.engagement_id, r.kind, r.payload, r.due_at, r.attempts, r.trace_context, due.was
"""


async def claim_due(
    pool: asyncpg.Pool, *, now: datetime, stale_after_s: float, limit: int = 20, held_back: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Mark due reminders 'sending' and log the attempt, committed before anything is posted (`held_back`: kinds
    posted together elsewhere — the daily digest, finding groups).

    A reminder still 'sending' after `stale_after_s` belonged to a notifier that died mid-delivery: it is claimed
    again and may be posted a second time — the one duplicate a crash can cause, and the log records it.
    """
    return await _claim(pool, CLAIM, now, stale_after_s, limit, list(held_back))


async def _claim(pool: asyncpg.Pool, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run a claim statement (CLAIM's shape), log each attempt, and return the claimed reminders decoded."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(sql, *args)
        if rows:
            await conn.executemany(
                "INSERT INTO deliveries (reminder_id, attempt, outcome) VALUES ($1, $2, $3)",
                [(r["id"], r["attempts"], "resending_after_crash" if r["was"] == "sending" else "sending")
                 for r in rows],
            )  # fmt: skip
    return [{**dict(r), "payload": json.loads(r["payload"]), "trace_context": json.loads(r["trace_context"])}
            for r in rows]  # fmt: skip


async def engagement_info(conn: asyncpg.Connection | asyncpg.Pool, engagement_id: UUID) -> asyncpg.Record | None:
    """Name, customer and channel of an engagement, if its creation event was seen."""
    return await conn.fetchrow(
        "SELECT name, customer, slack_channel, owners FROM notifier_engagements WHERE engagement_id = $1", engagement_id
    )


async def mark_sent(pool: asyncpg.Pool, *, attempts: Sequence[tuple[UUID, int]], channel: str, ts: str) -> None:
    """Record a post Slack accepted, for each (reminder id, attempt) it carried."""
    ids, numbers = [r for r, _ in attempts], [a for _, a in attempts]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE reminders SET status = 'sent', sent_at = now() WHERE id = any($1::uuid[])", ids)
        await conn.execute(
            "INSERT INTO deliveries (reminder_id, attempt, outcome, channel, slack_ts)"
            " SELECT r, a, 'sent', $3, $4 FROM unnest($1::uuid[], $2::int[]) AS d(r, a)",
            ids,
            numbers,
            channel,
            ts,
        )


async def mark_retry(
    pool: asyncpg.Pool, *, attempts: Sequence[tuple[UUID, int]], error: str, at: datetime, give_up: bool
) -> None:
    """Put reminders back for a later attempt, or mark them failed, for each (reminder id, attempt) of a post."""
    ids, numbers = [r for r, _ in attempts], [a for _, a in attempts]
    outcome = "failed" if give_up else "retry"
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE reminders SET status = $2, next_attempt_at = $3 WHERE id = any($1::uuid[])",
            ids,
            "failed" if give_up else "pending",
            at,
        )
        await conn.execute(
            "INSERT INTO deliveries (reminder_id, attempt, outcome, error)"
            " SELECT r, a, $3, $4 FROM unnest($1::uuid[], $2::int[]) AS d(r, a)",
            ids,
            numbers,
            outcome,
            error,
        )


async def mark_maybe_posted(
    pool: asyncpg.Pool, *, attempts: Sequence[tuple[UUID, int]], error: str, at: datetime
) -> bool:
    """Record a post Slack may have taken without answering, for each (reminder id, attempt) it carried; put them
    back for one more attempt unless one may already have been posted (an earlier such post, or a post cut off by a
    crash), else mark them failed. True when they will be sent again."""
    ids, numbers = [r for r, _ in attempts], [a for _, a in attempts]
    async with pool.acquire() as conn, conn.transaction():
        earlier = await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE reminder_id = any($1::uuid[])"
            " AND outcome IN ('maybe_sent', 'resending_after_crash')",
            ids,
        )
        resend = bool(earlier == 0)
        await conn.execute(
            "UPDATE reminders SET status = $2, next_attempt_at = $3 WHERE id = any($1::uuid[])",
            ids,
            "pending" if resend else "failed",
            at,
        )
        await conn.execute(
            "INSERT INTO deliveries (reminder_id, attempt, outcome, error)"
            " SELECT r, a, 'maybe_sent', $3 FROM unnest($1::uuid[], $2::int[]) AS d(r, a)",
            ids,
            numbers,
            error,
        )
    return resend


# CLAIM for findings: those due of engagements whose last finding message is older than the group interval ($3
# seconds), a finding left 'sending' by a notifier that died included.
CLAIM_FINDINGS = """
UPDATE reminders r SET status = 'sending', attempts = r.attempts + 1, claimed_at = now()
FROM (
    SELECT id, status AS was FROM reminders c
    WHERE c.kind = 'finding'
      AND ((c.status = 'pending' AND c.next_attempt_at <= $1)
           OR (c.status = 'sending' AND c.claimed_at < $1 - make_interval(secs => $2)))
      AND NOT EXISTS (
          SELECT FROM reminders s
          WHERE s.engagement_id = c.engagement_id AND s.kind = 'finding' AND s.status = 'sent'
            AND s.sent_at > $1 - make_interval(secs => $3))
    ORDER BY c.due_at
    LIMIT $4
    FOR UPDATE SKIP LOCKED
) due
WHERE r.id = due.id
RETURNING r.id, r.engagement_id, r.kind, r.payload, r.due_at, r.attempts, r.trace_context, due.was
"""


async def claim_findings(
    pool: asyncpg.Pool, *, now: datetime, stale_after_s: float, group_s: float, limit: int = 5000
) -> dict[UUID, list[dict[str, Any]]]:
    """`claim_due` for findings: those of every engagement that may be told again, grouped by engagement (one
    message each), oldest first."""
    groups: dict[UUID, list[dict[str, Any]]] = {}
    claimed = await _claim(pool, CLAIM_FINDINGS, now, stale_after_s, group_s, limit)
    for item in sorted(claimed, key=lambda r: r["due_at"]):  # RETURNING keeps no order
        groups.setdefault(item["engagement_id"], []).append(item)
    return groups


DIGEST_ROWS = """
SELECT r.id, r.engagement_id, r.kind, r.payload, r.attempts, r.due_at, e.name, e.customer, e.slack_channel
FROM reminders r LEFT JOIN notifier_engagements e USING (engagement_id)
WHERE r.status = 'pending' AND r.kind = ANY($1::text[]) AND r.next_attempt_at <= $2
ORDER BY r.due_at
FOR UPDATE OF r SKIP LOCKED
"""


async def claim_digests(
    pool: asyncpg.Pool, *, now: datetime, kinds: tuple[str, ...], default_channel: str
) -> dict[str, list[dict[str, Any]]]:
    """Claim today's digest for each channel not yet sent one, with the due reminders it lists.

    A channel that already had today's digest keeps its reminders pending for tomorrow's.
    """
    by_channel: dict[str, list[dict[str, Any]]] = {}
    async with pool.acquire() as conn, conn.transaction():
        for row in await conn.fetch(DIGEST_ROWS, list(kinds), now):
            item = {**dict(row), "payload": json.loads(row["payload"])}
            by_channel.setdefault(row["slack_channel"] or default_channel, []).append(item)
        for channel in list(by_channel):
            first = await conn.fetchval(
                "INSERT INTO digests (day, channel) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                now.date(), channel,
            )  # fmt: skip
            if not first:
                del by_channel[channel]
                continue
            ids = [r["id"] for r in by_channel[channel]]
            await conn.execute(
                "UPDATE reminders SET status = 'sending', attempts = attempts + 1, claimed_at = $2"
                " WHERE id = any($1::uuid[])",
                ids, now,
            )  # fmt: skip
            await conn.executemany(
                "INSERT INTO deliveries (reminder_id, attempt, outcome, channel) VALUES ($1, $2, 'sending', $3)",
                [(r["id"], r["attempts"] + 1, channel) for r in by_channel[channel]],
            )
    return by_channel


async def release_digest(pool: asyncpg.Pool, *, day: date, channel: str) -> None:
    """Forget a digest that could not be posted, so the next pass tries again."""
    await pool.execute("DELETE FROM digests WHERE day = $1 AND channel = $2", day, channel)
