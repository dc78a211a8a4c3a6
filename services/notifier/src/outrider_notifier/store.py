"""SQL of the notifier's tables: reminders, their deliveries, and what it knows of engagements."""

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from opentelemetry import propagate

from outrider_notifier import metrics
from outrider_notifier.reminders import Planned

log = logging.getLogger(__name__)


async def remember_engagement(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    engagement_id: UUID,
    name: str,
    customer: str,
    channel: str | None,
    owners: dict[str, str],
) -> None:
    """Keep the name, customer, channel and owners messages about this engagement need (an engagement already known
    keeps what it has: `update_engagement` applies the fields this event is the newest word on)."""
    await conn.execute(
        "INSERT INTO notifier_engagements (engagement_id, name, customer, slack_channel, owners)"
        " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (engagement_id) DO NOTHING",
        engagement_id,
        name,
        customer,
        channel,
        json.dumps(owners),
    )


# What of an `engagement.updated` event the notifier keeps: names for messages, where they go, whether to send them.
ENGAGEMENT_FIELDS = {"name": "name", "customer": "customer", "slack_channel": "slack_channel", "owners": "owners",
                     "status": "status"}  # fmt: skip
POSTABLE = "active"  # only an active engagement's reminders are posted; a paused one's wait, a closed one's end


async def update_engagement(
    conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID, changes: dict[str, Any]
) -> None:
    """Apply an `engagement.updated` event's changes the notifier cares about (a rename shows in the next message)."""
    for field, column in ENGAGEMENT_FIELDS.items():
        if field in changes:
            value = json.dumps(changes[field]) if field == "owners" else changes[field]
            cast = "::jsonb" if field == "owners" else ""
            await conn.execute(f"UPDATE notifier_engagements SET {column} = $2{cast} WHERE engagement_id = $1",
                               engagement_id, value)  # fmt: skip


async def engagement_status(conn: asyncpg.Connection | asyncpg.Pool, engagement_id: UUID) -> str:
    """The engagement's status as the notifier last heard it ('active' for one it has not heard of)."""
    status = await conn.fetchval("SELECT status FROM notifier_engagements WHERE engagement_id = $1", engagement_id)
    return str(status or POSTABLE)


# Ends reminders no longer true to post: a pending one is cancelled; one being sent is withdrawn — not posted if its
# post has not begun, settled by the notifier holding its claim, or ended by the claim taking over from a dead one.
END = (
    "UPDATE reminders SET status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,"
    " withdrawn = (status = 'sending') WHERE (status = 'pending' OR (status = 'sending' AND NOT withdrawn))"
)


async def cancel_engagement(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> int:
    """End (`END`) every reminder of a closed engagement; returns how many."""
    result = await conn.execute(f"{END} AND engagement_id = $1", engagement_id)
    return int(result.split()[-1])


async def mark_newest(
    conn: asyncpg.Connection, *, engagement_id: UUID, subject: str, occurred_at: datetime, event_id: UUID
) -> datetime | None:
    """Record an event as the newest applied to its subject; when a newer one was, return when that one occurred
    (the event is stale and must change nothing).

    One as old as the newest (that event again, redelivered) is applied again, as its idempotency keys allow. The row
    stays locked until the transaction ends, so two events of one subject are applied one after the other.
    """
    applied = await conn.fetchval(
        """INSERT INTO subject_events AS s (engagement_id, subject, occurred_at, event_id) VALUES ($1, $2, $3, $4)
        ON CONFLICT (engagement_id, subject) DO UPDATE
            SET occurred_at = $3, event_id = $4 WHERE s.occurred_at <= $3
        RETURNING true""",
        engagement_id,
        subject,
        occurred_at,
        event_id,
    )
    if applied:
        return None
    newest: datetime = await conn.fetchval(
        "SELECT occurred_at FROM subject_events WHERE engagement_id = $1 AND subject = $2", engagement_id, subject
    )
    return newest


async def schedule(
    conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID, planned: Planned, replan: bool = False
) -> bool:
    """Store a reminder unless one with its idempotency key exists; True when new (or revived).

    With `replan` (the event re-plans its subject: a touchpoint renamed or moved), the stored one takes this plan — a
    pending one its new title and lead (its due time kept if `keeps_due`), a cancelled one comes back pending (a
    touchpoint moved away and back), one withdrawn while being sent is true again; one sent, being sent or failed
    never changes otherwise. A pending one waiting out a retry keeps its later attempt time.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # the event's trace, continued by the Slack post however much later it is due
    if replan:
        await conn.execute("UPDATE reminders SET withdrawn = false WHERE idempotency_key = $1 AND status = 'sending'",
                           planned.idempotency_key)  # fmt: skip
    new = await conn.fetchval(
        """WITH before AS (SELECT status FROM reminders WHERE idempotency_key = $2)
        INSERT INTO reminders
            (id, idempotency_key, engagement_id, kind, subject, due_at, next_attempt_at, payload, trace_context)
        VALUES ($1, $2, $3, $4, $5, $6, $6, $7::jsonb, $8::jsonb)
        ON CONFLICT (idempotency_key) DO UPDATE
            SET status = 'pending', payload = $7::jsonb, trace_context = $8::jsonb, withdrawn = false,
                due_at = CASE WHEN $10::boolean AND reminders.status = 'pending' THEN reminders.due_at ELSE $6 END,
                next_attempt_at = CASE WHEN $10::boolean AND reminders.status = 'pending' THEN reminders.next_attempt_at
                                       WHEN reminders.status = 'pending' AND reminders.attempts > 0
                                       THEN greatest(reminders.next_attempt_at, $6) ELSE $6 END
            WHERE $9::boolean AND reminders.status IN ('pending', 'cancelled')
        RETURNING (SELECT status FROM before) IS DISTINCT FROM 'pending'""",
        uuid4(),
        planned.idempotency_key,
        engagement_id,
        planned.kind,
        planned.subject,
        planned.due_at,
        json.dumps(planned.payload),
        json.dumps(carrier),
        replan,
        planned.keeps_due,
    )
    return bool(new)


async def as_stored(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID, planned: Planned) -> Planned:
    """`planned` under the idempotency key of the engagement's reminder of its kind and subject about the same stage,
    when one is stored: re-planned, that one is revived if cancelled and left alone if sent, never planned twice."""
    key = await conn.fetchval(
        "SELECT idempotency_key FROM reminders WHERE engagement_id = $1 AND kind = $2 AND subject = $3"
        " AND payload->>'stage' = $4 ORDER BY created_at DESC LIMIT 1",
        engagement_id,
        planned.kind,
        planned.subject,
        str(planned.payload.get("stage")),
    )
    return planned if key is None else replace(planned, idempotency_key=key)


async def cancel(
    conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID, subject: str, keep: Sequence[str] = ()
) -> int:
    """End (`END`) reminders about `subject` except those whose idempotency key is in `keep` (what the same event
    plans again, so a redelivered reschedule keeps its new reminders); returns how many."""
    result = await conn.execute(
        f"{END} AND engagement_id = $1 AND subject = $2 AND NOT idempotency_key = ANY($3::text[])",
        engagement_id,
        subject,
        list(keep),
    )
    return int(result.split()[-1])


# Reminders of an engagement that is not active (paused: they wait; closed: cancelled) are left where they are.
ACTIVE = (
    "NOT EXISTS (SELECT FROM notifier_engagements e WHERE e.engagement_id = c.engagement_id AND e.status <> 'active')"
)

# Reminder `c`'s engagement's status as the notifier last heard it ('active' for one it has not heard of).
STATUS = "coalesce((SELECT e.status FROM notifier_engagements e WHERE e.engagement_id = c.engagement_id), 'active')"
# A claim a notifier that died left ($2 seconds old): taken over, unless its engagement is paused (it waits, as that
# one's pending reminders do). One withdrawn meanwhile, or of an engagement closed since, `ENDS` there, unposted.
ORPHANED = f"""(c.status = 'sending' AND c.claimed_at < $1 - make_interval(secs => $2)
                AND (c.withdrawn OR {STATUS} <> 'paused'))"""
ENDS = f"(c.status = 'sending' AND (c.withdrawn OR {STATUS} = 'closed'))"

CLAIM = f"""
UPDATE reminders r SET status = 'sending', attempts = r.attempts + 1, claimed_at = now(), withdrawn = false
FROM (
    SELECT id, status AS was, {ENDS} AS ends FROM reminders c
    WHERE (c.status = 'pending' AND c.next_attempt_at <= $1 AND {ACTIVE}
           AND (NOT c.kind = ANY($4::text[])
                OR (c.kind = 'touchpoint_due' AND (c.payload->>'scheduled_at')::timestamptz < $5)))
       OR {ORPHANED}
    ORDER BY c.next_attempt_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
) due
WHERE r.id = due.id
RETURNING r.id, r.engagement_id, r.kind, r.payload, r.due_at, r.attempts, r.rate_limited, r.trace_context,
          due.was, due.ends
"""


async def claim_due(
    pool: asyncpg.Pool,
    *,
    now: datetime,
    stale_after_s: float,
    limit: int = 20,
    held_back: tuple[str, ...] = (),
    urgent_before: datetime | None = None,
) -> list[dict[str, Any]]:
    """Mark due reminders 'sending' and log the attempt, committed before anything is posted (`held_back`: kinds
    posted together elsewhere — the daily digest, finding groups — save a touchpoint reminder whose touchpoint comes
    before `urgent_before`, the next digest).

    A reminder still 'sending' after `stale_after_s` belonged to a notifier that died mid-delivery: it is claimed
    again and may be posted a second time — the one duplicate a crash can cause, and the log records it. One that
    may have been posted twice already is marked failed instead; one withdrawn since, or of an engagement closed
    since, is cancelled; one of a paused engagement waits.
    """
    return await _claim(pool, CLAIM, now, stale_after_s, limit, list(held_back), urgent_before)


MAYBE_POSTED = ("maybe_sent", "resending_after_crash")  # outcomes after which Slack may already show the message


async def _claim(pool: asyncpg.Pool, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run a claim statement (CLAIM's shape), log each attempt, and return the claimed reminders decoded; a stale
    claim of one that may already have been posted (a timeout, an earlier crash) ends failed, not posted again, one
    that `ENDS` ends cancelled."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(sql, *args)
        if ended := [(r["id"], r["attempts"]) for r in rows if r["ends"]]:
            await _outcome(conn, ended, status="cancelled", outcome="cancelled")
            log.info("claim a dead notifier left ends unposted, withdrawn or its engagement closed ids=%s",
                     ",".join(str(r) for r, _ in ended))  # fmt: skip
            rows = [r for r in rows if not r["ends"]]
        reclaimed = [r["id"] for r in rows if r["was"] == "sending"]
        twice = set()
        if reclaimed:
            twice = {r["reminder_id"] for r in await conn.fetch(
                "SELECT DISTINCT reminder_id FROM deliveries WHERE reminder_id = any($1::uuid[])"
                " AND outcome = any($2::text[])", reclaimed, list(MAYBE_POSTED))}  # fmt: skip
        if twice:
            await _outcome(conn, [(r["id"], r["attempts"]) for r in rows if r["id"] in twice], status="failed",
                           outcome="failed", error="maybe_posted_twice")  # fmt: skip
            metrics.REMINDERS.labels("failed").inc(len(twice))
            log.error("reminder maybe posted twice, not sent again after a crash ids=%s", ",".join(map(str, twice)))
        if claimed := [r for r in rows if r["id"] not in twice]:
            await conn.executemany(
                "INSERT INTO deliveries (reminder_id, attempt, outcome) VALUES ($1, $2, $3)",
                [(r["id"], r["attempts"], "resending_after_crash" if r["was"] == "sending" else "sending")
                 for r in claimed],
            )  # fmt: skip
    return [{**dict(r), "payload": json.loads(r["payload"]), "trace_context": json.loads(r["trace_context"])}
            for r in claimed]  # fmt: skip


async def engagement_info(conn: asyncpg.Connection | asyncpg.Pool, engagement_id: UUID) -> asyncpg.Record | None:
    """Name, customer and channel of an engagement, if its creation event was seen."""
    return await conn.fetchrow(
        "SELECT name, customer, slack_channel, owners FROM notifier_engagements WHERE engagement_id = $1", engagement_id
    )


async def _outcome(
    conn: asyncpg.Connection,
    attempts: Sequence[tuple[UUID, int]],
    *,
    status: str,
    outcome: str,
    at: datetime | None = None,
    error: str | None = None,
    channel: str | None = None,
    ts: str | None = None,
    rate_limited: bool = False,
) -> set[UUID]:
    """Give the reminders of one post `status` (and their next attempt time `at`, when given), and log `outcome` for
    each (reminder id, attempt) it carried; `rate_limited`: the claim waits out a 429 and does not count as an attempt.

    A reminder whose claim another notifier took over (its claim had gone stale) is left to that one: the outcome is
    logged, its status not touched. One withdrawn while being sent is cancelled, unless it was posted (sent: what
    Slack shows). Returns the ids withdrawn.
    """
    ids, numbers = [r for r, _ in attempts], [a for _, a in attempts]
    rows = await conn.fetch(
        "UPDATE reminders r SET status = CASE WHEN r.withdrawn AND $3 <> 'sent' THEN 'cancelled' ELSE $3 END,"
        " next_attempt_at = coalesce($4, r.next_attempt_at),"
        " sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE r.sent_at END, rate_limited = r.rate_limited + $5::int"
        " FROM unnest($1::uuid[], $2::int[]) AS c(id, attempt)"
        " WHERE r.id = c.id AND r.attempts = c.attempt AND r.status = 'sending' RETURNING r.id, r.withdrawn",
        ids,
        numbers,
        status,
        at,
        int(rate_limited),
    )
    if len(rows) < len(ids):
        log.warning("outcome of a claim another notifier took over, status left to it ids=%s outcome=%s",
                    ",".join(map(str, ids)), outcome)  # fmt: skip
    await conn.execute(
        "INSERT INTO deliveries (reminder_id, attempt, outcome, error, channel, slack_ts)"
        " SELECT r, a, $3, $4, $5, $6 FROM unnest($1::uuid[], $2::int[]) AS d(r, a)",
        ids,
        numbers,
        outcome,
        error,
        channel,
        ts,
    )
    return {r["id"] for r in rows if r["withdrawn"]}


async def renew(pool: asyncpg.Pool, *, attempts: Sequence[tuple[UUID, int]]) -> tuple[set[UUID], set[UUID]]:
    """Keep claims fresh while their notifier works through them: stamp `claimed_at` again on each (reminder id,
    attempt) still claimed by that claim; returns the ids renewed, and those withdrawn (their touchpoint cancelled,
    their engagement closed), which end cancelled here, unposted. One in neither was taken over by another notifier
    (its claim had gone stale) or settled; none of those must be posted by this one."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "UPDATE reminders r SET claimed_at = now() FROM unnest($1::uuid[], $2::int[]) AS c(id, attempt)"
            " WHERE r.id = c.id AND r.attempts = c.attempt AND r.status = 'sending'"
            " RETURNING r.id, r.attempts, r.withdrawn",
            [r for r, _ in attempts],
            [a for _, a in attempts],
        )
        if withdrawn := [(r["id"], r["attempts"]) for r in rows if r["withdrawn"]]:
            await _outcome(conn, withdrawn, status="cancelled", outcome="cancelled")
    return {r["id"] for r in rows if not r["withdrawn"]}, {r for r, _ in withdrawn}


async def mark_sent(pool: asyncpg.Pool, *, attempts: Sequence[tuple[UUID, int]], channel: str, ts: str) -> None:
    """Record a post Slack accepted, for each (reminder id, attempt) it carried."""
    async with pool.acquire() as conn, conn.transaction():
        await _outcome(conn, attempts, status="sent", outcome="sent", channel=channel, ts=ts)


async def mark_retry(
    pool: asyncpg.Pool,
    *,
    attempts: Sequence[tuple[UUID, int]],
    error: str,
    at: datetime,
    give_up: bool,
    rate_limited: bool = False,
) -> None:
    """Put reminders back for a later attempt, or mark them failed, for each (reminder id, attempt) of a post;
    `rate_limited`: held back by a 429, which never uses up an attempt."""
    async with pool.acquire() as conn, conn.transaction():
        await _outcome(conn, attempts, status="failed" if give_up else "pending",
                       outcome="failed" if give_up else "retry", at=at, error=error,
                       rate_limited=rate_limited)  # fmt: skip


async def release(pool: asyncpg.Pool, *, attempts: Sequence[tuple[UUID, int]]) -> None:
    """Hand claimed reminders back unposted (their notifier is stopping): pending again at once, the claim counted as
    a 429's is, not as an attempt. Left claimed, they would wait for the claim to go stale and be logged as resent
    after a crash."""
    async with pool.acquire() as conn, conn.transaction():
        await _outcome(conn, attempts, status="pending", outcome="released", at=datetime.now(UTC), rate_limited=True)


async def mark_expired(pool: asyncpg.Pool, *, attempts: Sequence[tuple[UUID, int]]) -> None:
    """End claimed reminders that are no longer true to post (a "coming up" after its touchpoint is overdue)."""
    async with pool.acquire() as conn, conn.transaction():
        await _outcome(conn, attempts, status="cancelled", outcome="expired")


async def mark_maybe_posted(
    pool: asyncpg.Pool, *, attempts: Sequence[tuple[UUID, int]], error: str, at: datetime
) -> set[UUID]:
    """Record a post Slack may have taken without answering, for each (reminder id, attempt) it carried. Each
    reminder on its own: one that may already have been posted (an earlier such post, or a post cut off by a crash)
    is marked failed, the others are put back for one more attempt (one withdrawn meanwhile is cancelled). Returns
    the ids that will be sent again."""
    async with pool.acquire() as conn, conn.transaction():
        twice = {r["reminder_id"] for r in await conn.fetch(
            "SELECT DISTINCT reminder_id FROM deliveries WHERE reminder_id = any($1::uuid[])"
            " AND outcome = any($2::text[])", [r for r, _ in attempts], list(MAYBE_POSTED))}  # fmt: skip
        withdrawn: set[UUID] = set()
        if failed := [a for a in attempts if a[0] in twice]:
            await _outcome(conn, failed, status="failed", outcome="maybe_sent", at=at, error=error)
        if again := [a for a in attempts if a[0] not in twice]:
            withdrawn = await _outcome(conn, again, status="pending", outcome="maybe_sent", at=at, error=error)
    return {r for r, _ in again} - withdrawn


# CLAIM for findings: those due of active engagements whose last finding message is older than the group interval
# ($3 seconds), a finding left 'sending' by a notifier that died included (`ORPHANED`).
CLAIM_FINDINGS = f"""
UPDATE reminders r SET status = 'sending', attempts = r.attempts + 1, claimed_at = now(), withdrawn = false
FROM (
    SELECT id, status AS was, {ENDS} AS ends FROM reminders c
    WHERE c.kind = 'finding'
      AND ((c.status = 'pending' AND c.next_attempt_at <= $1 AND {ACTIVE}) OR {ORPHANED})
      AND NOT EXISTS (
          SELECT FROM reminders s
          WHERE s.engagement_id = c.engagement_id AND s.kind = 'finding' AND s.status = 'sent'
            AND s.sent_at > $1 - make_interval(secs => $3))
    ORDER BY c.due_at
    LIMIT $4
    FOR UPDATE SKIP LOCKED
) due
WHERE r.id = due.id
RETURNING r.id, r.engagement_id, r.kind, r.payload, r.due_at, r.attempts, r.rate_limited, r.trace_context,
          due.was, due.ends
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
SELECT r.id, r.engagement_id, r.kind, r.payload, r.attempts + 1 AS attempts, r.rate_limited, r.due_at, e.name,
       e.customer, e.slack_channel, e.owners
FROM reminders r LEFT JOIN notifier_engagements e USING (engagement_id)
WHERE r.status = 'pending' AND r.kind = ANY($1::text[]) AND r.next_attempt_at <= $2
  AND coalesce(e.status, 'active') = 'active'
ORDER BY r.due_at
FOR UPDATE OF r SKIP LOCKED
"""


async def claim_digests(
    pool: asyncpg.Pool, *, now: datetime, kinds: tuple[str, ...], default_channel: str
) -> dict[str, list[dict[str, Any]]]:
    """Claim today's digest for each channel not yet sent one, with the due reminders it lists (`attempts`: the
    attempt this claim makes, as in the table).

    A channel that already had today's digest keeps its reminders pending for tomorrow's.
    """
    by_channel: dict[str, list[dict[str, Any]]] = {}
    async with pool.acquire() as conn, conn.transaction():
        for row in await conn.fetch(DIGEST_ROWS, list(kinds), now):
            item = {**dict(row), "payload": json.loads(row["payload"]), "owners": json.loads(row["owners"] or "{}")}
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
                "UPDATE reminders SET status = 'sending', attempts = attempts + 1, claimed_at = $2, withdrawn = false"
                " WHERE id = any($1::uuid[])",
                ids, now,
            )  # fmt: skip
            await conn.executemany(
                "INSERT INTO deliveries (reminder_id, attempt, outcome, channel) VALUES ($1, $2, 'sending', $3)",
                [(r["id"], r["attempts"], channel) for r in by_channel[channel]],
            )
    return by_channel


async def release_digest(pool: asyncpg.Pool, *, day: date, channel: str) -> None:
    """Forget a digest that could not be posted, so the next pass tries again."""
    await pool.execute("DELETE FROM digests WHERE day = $1 AND channel = $2", day, channel)
