"""Subscribers of the notifier: events become stored reminders (idempotently), never messages directly."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

import asyncpg
from faststream import Context

from outrider_common.events import EngagementEvent, Finding
from outrider_notifier import metrics, store
from outrider_notifier.reminders import plan_for_event, plan_for_finding, subjects_cancelled_by
from outrider_notifier.settings import NotifierSettings

log = logging.getLogger(__name__)


async def on_engagement_event(
    event: EngagementEvent,
    pool: Annotated[asyncpg.Pool, Context("pool")],
    settings: Annotated[NotifierSettings, Context("settings")],
    wake: Annotated[asyncio.Event, Context("wake_dispatcher")],
) -> None:
    """Schedule or cancel reminders for an engagement event (a redelivered event changes nothing)."""
    metrics.EVENTS.labels(event.type).inc()
    async with pool.acquire() as conn, conn.transaction():
        if event.type == "engagement.created":
            await store.remember_engagement(
                conn,
                engagement_id=event.engagement_id,
                name=str(event.data.get("name", "")),
                customer=str(event.data.get("customer", "")),
                channel=_text(event.data.get("slack_channel")),
                owners={str(k): str(v) for k, v in dict(event.data.get("owners") or {}).items()},  # type: ignore[call-overload]
            )
        if event.type == "engagement.updated":
            await store.update_engagement(conn, engagement_id=event.engagement_id, changes=event.data)
        lead = None if settings.touchpoint_lead_s is None else timedelta(seconds=settings.touchpoint_lead_s)
        grace = timedelta(seconds=settings.overdue_grace_s)
        plan = plan_for_event(event, lead=lead, grace=grace)
        for subject in subjects_cancelled_by(event):
            cancelled = await store.cancel(conn, engagement_id=event.engagement_id, subject=subject,
                                           keep=[p.idempotency_key for p in plan])  # fmt: skip
            metrics.REMINDERS.labels("cancelled").inc(cancelled)
        for planned in plan:
            if await store.schedule(conn, engagement_id=event.engagement_id, planned=planned):
                metrics.REMINDERS.labels("scheduled").inc()
    wake.set()


async def on_finding(
    finding: Finding,
    pool: Annotated[asyncpg.Pool, Context("pool")],
    wake: Annotated[asyncio.Event, Context("wake_dispatcher")],
) -> None:
    """A new finding becomes a reminder due now (the dispatcher groups an engagement's findings)."""
    metrics.EVENTS.labels("finding").inc()
    if await store.schedule(
        pool, engagement_id=finding.engagement_id, planned=plan_for_finding(finding, now=datetime.now(UTC))
    ):
        metrics.REMINDERS.labels("scheduled").inc()
    wake.set()


def _text(value: object) -> str | None:
    return None if value is None else str(value)
