"""Schemas of the log statistics an engagement's status shows."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field


class KeyStats(BaseModel):
    """Stats of one key (controller#action, route, gRPC method, worker) over the requested range."""

    log_type: str
    key: str
    count: int
    failed: int
    perc_failed: float = Field(description="100 * failed / count")
    mean_ms: float


class EngagementStats(BaseModel):
    """What the analyzer has counted for an engagement."""

    engagement_id: UUID
    since: datetime | None
    until: datetime | None
    total_count: int
    keys: list[KeyStats]
