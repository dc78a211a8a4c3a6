"""Engagement events the tracker records in the outbox."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from outrider_common import outbox
from outrider_common.events import EngagementEvent
from outrider_common.topics import ENGAGEMENT_EVENTS


async def record(
    conn: asyncpg.Connection, *, engagement_id: UUID, type: str, data: dict[str, object] | None = None
) -> EngagementEvent:
    """Queue an engagement event; call inside the transaction that makes the change."""
    event = EngagementEvent(
        event_id=uuid4(), type=type, engagement_id=engagement_id, occurred_at=datetime.now(UTC), data=data or {}
    )
    await outbox.add(conn, producer="tracker", topic=ENGAGEMENT_EVENTS, key=str(engagement_id), event=event)
    return event
