"""The `log_stats` contract: a mergeable per-(key, bucket) aggregate the analyzer writes and the tracker reads."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import logparse

# The width of a `log_stats` bucket: the analyzer writes minutes, and the tracker widens a range to whole ones. Part
# of the contract, not a setting: rows of another width would mix with those stored, and ranges would be cut wrong.
BUCKET_SECONDS = 60

SUMS = ("duration_sum_ms", "duration_sumsq_ms2", "db_sum_ms", "gitaly_sum_ms", "redis_sum_ms", "cpu_sum_ms",
        "queue_sum_ms")  # fmt: skip
FIELDS = ("count", "failed", *SUMS, "duration_min_ms", "duration_max_ms", "sketch")


@dataclass(frozen=True, order=True)
class StatsKey:
    """Primary key of a `log_stats` row."""

    engagement_id: UUID
    log_type: str
    key: str
    bucket_start: datetime


@dataclass
class Aggregate:
    """Counts, sums, extremes and the quantile sketch of one key in one bucket."""

    count: int = 0
    failed: int = 0
    duration_sum_ms: float = 0.0
    duration_sumsq_ms2: float = 0.0
    duration_min_ms: float | None = None
    duration_max_ms: float | None = None
    db_sum_ms: float = 0.0
    gitaly_sum_ms: float = 0.0
    redis_sum_ms: float = 0.0
    cpu_sum_ms: float = 0.0
    queue_sum_ms: float = 0.0
    sketch: bytes | None = None

    @classmethod
    def from_group(cls, group: logparse.GroupStats) -> "Aggregate":
        """From what the parser returned for one key and bucket."""
        return cls(**{n: getattr(group, n) for n in FIELDS})

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Aggregate":
        """From a `log_stats` row."""
        return cls(**{n: record[n] for n in FIELDS})

    def quantiles(self, qs: list[float]) -> list[float]:
        """Quantiles of the durations from the sketch (relative error ≤ logparse.RELATIVE_ACCURACY)."""
        if self.sketch is None or self.count == 0:
            return [0.0] * len(qs)
        return logparse.sketch_quantiles(self.sketch, qs)
