"""Portfolio queries, also exported as gauges for Grafana."""

import asyncio
import logging
from datetime import timedelta

import asyncpg
from prometheus_client import Gauge

from outrider_tracker.playbook import service as playbooks
from outrider_tracker.portfolio.models import Portfolio, StageCount, StalledEngagement
from outrider_tracker.stage.health import HealthInputs, health, health_counts
from outrider_tracker.touchpoint.service import overdue_sql

log = logging.getLogger(__name__)
ENGAGEMENTS = Gauge("outrider_tracker_engagements", "Active engagements by playbook and stage.", ["playbook", "stage"])
OVERDUE = Gauge(
    "outrider_tracker_overdue_touchpoints", "Scheduled touchpoints whose time passed more than the overdue grace ago."
)
STALLED = Gauge(
    "outrider_tracker_stalled_engagements",
    "Engagements in their stage longer than expected, or with no change for OUTRIDER_STALLED_DAYS.",
)
# By id alone: /metrics answers without a token, and customer names are confidential (they are in PostgreSQL).
HEALTH = Gauge(
    "outrider_tracker_engagement_health",
    "Health score (0-100) of each active engagement, as in its status API.",
    ["engagement_id"],
)


async def get(
    conn: asyncpg.Connection | asyncpg.Pool, *, overdue_grace: timedelta, stalled_after: timedelta
) -> Portfolio:
    """Counts per stage, touchpoints overdue by more than `overdue_grace`, stalled engagements: longer in their stage
    than the playbook expects, or nothing changed (in their audit trail) for `stalled_after` (active ones only)."""
    counts = await conn.fetch(
        "SELECT playbook_id, stage, count(*) AS count FROM engagements WHERE status = 'active'"
        " GROUP BY playbook_id, stage ORDER BY playbook_id, stage"
    )
    overdue = await conn.fetchval(
        "SELECT count(*) FROM touchpoints t JOIN engagements e ON e.id = t.engagement_id"
        f" WHERE {overdue_sql('$1')} AND e.status = 'active'",
        overdue_grace,
    )
    # Every change to an engagement writes its audit trail; its newest entry is the last change (the index on
    # (engagement_id, id) gives it in one probe).
    rows = await conn.fetch(
        "SELECT id, name, playbook_id, stage, extract(epoch FROM now() - stage_entered_at) / 86400 AS days,"
        " extract(epoch FROM now() - coalesce((SELECT at FROM audit_log a WHERE a.engagement_id = e.id"
        " ORDER BY a.id DESC LIMIT 1), created_at)) / 86400 AS quiet"
        " FROM engagements e WHERE status = 'active'"
    )
    stalled = []
    quiet_days = stalled_after.total_seconds() / 86400
    for r in rows:
        expected = playbooks.get_all()[r["playbook_id"]].stage(r["stage"]).expected_days
        why = [
            w for w, over in (("stage_overdue", r["days"] > expected), ("no_change", r["quiet"] > quiet_days)) if over
        ]
        if why:
            stalled.append(StalledEngagement(
                id=r["id"], name=r["name"], stage=r["stage"], days_in_stage=float(r["days"]), expected_days=expected,
                days_since_change=float(r["quiet"]), why=why,
            ))  # fmt: skip
    return Portfolio(by_stage=[StageCount(**dict(c)) for c in counts], overdue_touchpoints=overdue, stalled=stalled)


async def health_scores(conn: asyncpg.Connection | asyncpg.Pool, *, overdue_grace: timedelta) -> list[tuple[str, int]]:
    """(engagement id, health score) of every active engagement."""
    rows = await conn.fetch(
        f"SELECT e.id, e.playbook_id, e.stage, {health_counts('$1')} FROM engagements e WHERE e.status = 'active'",
        overdue_grace,
    )
    books = playbooks.get_all()
    return [
        (str(r["id"]), health(HealthInputs(r["overdue"], r["risks"], r["findings"], float(r["days"]),
                                           books[r["playbook_id"]].stage(r["stage"]).expected_days))[0])
        for r in rows
    ]  # fmt: skip


async def export_gauges(pool: asyncpg.Pool, every: float, overdue_grace: timedelta, stalled_after: timedelta) -> None:
    """Refresh the portfolio gauges until cancelled."""
    while True:
        try:
            portfolio = await get(pool, overdue_grace=overdue_grace, stalled_after=stalled_after)
            scores = await health_scores(pool, overdue_grace=overdue_grace)
            # Set together, with no await between: a scrape (served on this loop) sees one pass, never the counts
            # of this one beside the health of the last, or a health gauge cleared and not yet set.
            ENGAGEMENTS.clear()
            for c in portfolio.by_stage:
                ENGAGEMENTS.labels(c.playbook_id, c.stage).set(c.count)
            OVERDUE.set(portfolio.overdue_touchpoints)
            STALLED.set(len(portfolio.stalled))
            HEALTH.clear()
            for engagement_id, score in scores:
                HEALTH.labels(engagement_id).set(score)
        except (OSError, asyncpg.PostgresError) as exc:  # the next pass retries
            log.warning("portfolio gauges not refreshed error=%r", exc)
        except Exception:  # a bug or a dropped connection (InterfaceError) must not stop the gauges for good
            log.exception("portfolio gauges not refreshed")
        await asyncio.sleep(every)
