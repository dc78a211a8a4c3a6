"""Schemas of the log statistics an engagement's status shows (the columns of `outrider stats`)."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field


class KeyStats(BaseModel):
    """One key (controller#action, route, gRPC method, Sidekiq worker) over the requested range; times in ms.

    Percentiles come from mergeable sketches: within 1 % of the exact value. Counts, sums and extremes are exact.
    """

    log_type: str
    key: str
    count: int
    rps: float = Field(description="count over the time span of the engagement's logs in the range")
    p99_ms: float
    p95_ms: float
    median_ms: float
    max_ms: float
    min_ms: float
    stddev_ms: float = Field(description="population standard deviation")
    score: float = Field(description="count * p99_ms: total tail cost, the default sort")
    failed: int
    perc_failed: float = Field(description="100 * failed / count")
    mean_ms: float
    db_avg_ms: float
    gitaly_avg_ms: float
    redis_avg_ms: float
    cpu_avg_ms: float
    queue_avg_ms: float


class EngagementStats(BaseModel):
    """What the analyzer has counted for an engagement."""

    engagement_id: UUID
    since: datetime | None
    until: datetime | None
    span_seconds: float = Field(description="time span of the logs the figures cover")
    total_count: int = Field(description="requests over every key, also those past `limit`")
    keys: list[KeyStats]
