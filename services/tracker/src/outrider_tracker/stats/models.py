"""Schemas of the log statistics an engagement's status shows (the columns of `outrider stats`)."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field


class KeyStats(BaseModel):
    """One key (controller#action, route, gRPC method, Sidekiq worker) over the requested range; times in ms.

    Percentiles come from mergeable sketches: within 1 % of the exact value. Counts, sums and extremes are exact.
    """

    log_type: str
    key: str
    count: int
    rps: float = Field(description="count over the time span of its log type's logs in the range counted")
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


SortField = Literal[
    "key", "count", "rps", "p99_ms", "p95_ms", "median_ms", "max_ms", "min_ms", "stddev_ms", "score", "failed",
    "perc_failed", "mean_ms", "db_avg_ms", "gitaly_avg_ms", "redis_avg_ms", "cpu_avg_ms", "queue_avg_ms",
]  # fmt: skip
"""What the keys can be sorted by: a name ascending, any figure largest first."""


class EngagementStats(BaseModel):
    """What the analyzer has counted for an engagement."""

    engagement_id: UUID
    since: datetime | None = Field(description="start of the range asked for")
    until: datetime | None = Field(description="end of the range asked for")
    counted_since: datetime | None = Field(description="start of the range counted: `since` down to the minute")
    counted_until: datetime | None = Field(description="end of the range counted (exclusive): `until` up to the minute")
    span_seconds: float = Field(
        description="time span of the logs the figures cover, all log types together (each type's `rps` is over "
        "its own span)"
    )
    total_count: int = Field(description="requests over every key, also those past `limit`")
    untimed_count: int = Field(
        description="requests logged without a time (of `log_type` if given): counted in the figures only when "
        "neither `since` nor `until` is given, as they belong to no time range"
    )
    key_count: int = Field(description="keys in the range, on every page")
    keys: list[KeyStats]
    totals: list[KeyStats] = Field(
        description="one row a log type, key `TOTAL`: all its keys together, also those past `limit` (percentiles "
        "over every request, not added up)"
    )


class FindingRead(BaseModel):
    """A finding the analyzer raised: a rule a key broke in one time window, with the figures that broke it."""

    finding_id: UUID
    rule: str = Field(description="slow_endpoint, error_spike, slow_gitaly or sidekiq_latency")
    log_type: str
    key: str
    window_start: datetime
    figures: dict[str, float] = Field(description="the numbers that tripped the rule and its threshold")
    raised_at: datetime


class EngagementFindings(BaseModel):
    """A page of an engagement's findings, newest window first, and how many match in all."""

    engagement_id: UUID
    total: int = Field(description="findings matching the filters, on every page")
    findings: list[FindingRead]
