"""Subscribers of the notifier."""

import logging

from outrider_common.events import EngagementEvent
from outrider_notifier import metrics

log = logging.getLogger(__name__)


async def on_engagement_event(event: EngagementEvent) -> None:
    """Record an engagement event (reminder scheduling builds on this)."""
    metrics.EVENTS.labels(event.type).inc()
    log.info("event type=%s engagement_id=%s", event.type, event.engagement_id)
