"""Rules that turn a window's aggregate into findings (pure: thresholds in, findings out)."""

from dataclasses import dataclass

from pydantic import BaseModel, Field

from outrider_common.logstats import Aggregate, StatsKey


class Thresholds(BaseModel):
    """When a window is worth a finding. Defaults follow common SLOs for a GitLab reference architecture."""

    min_count: int = Field(20, ge=1, description="Fewer requests in a window than this never raise a finding.")
    slow_endpoint_p99_ms: float = Field(5000, gt=0, description="Rails/API p99 above this is slow.")
    error_rate: float = Field(0.05, gt=0, le=1, description="Share of failed requests that is a spike.")
    slow_gitaly_p99_ms: float = Field(1000, gt=0, description="Gitaly RPC p99 above this is slow.")
    sidekiq_queue_ms: float = Field(10_000, gt=0, description="Mean Sidekiq scheduling latency above this.")


@dataclass(frozen=True)
class Tripped:
    """A rule that fired for one window, with the evidence."""

    rule: str
    summary: str
    figures: dict[str, float]


def evaluate(where: StatsKey, agg: Aggregate, limits: Thresholds) -> list[Tripped]:
    """Every rule `agg` breaks; empty when the window has too few requests to judge."""
    if agg.count < limits.min_count:
        return []
    found: list[Tripped] = []
    (p99,) = agg.quantiles([0.99])
    rate = agg.failed / agg.count
    base = {"count": float(agg.count)}
    if where.log_type in ("production_json", "api_json") and p99 > limits.slow_endpoint_p99_ms:
        found.append(
            Tripped("slow_endpoint", f"{where.key} p99 {p99:.0f} ms > {limits.slow_endpoint_p99_ms:.0f} ms",
                    {**base, "p99_ms": p99, "limit_ms": limits.slow_endpoint_p99_ms})
        )  # fmt: skip
    if where.log_type == "gitaly" and p99 > limits.slow_gitaly_p99_ms:
        found.append(
            Tripped("slow_gitaly", f"{where.key} p99 {p99:.0f} ms > {limits.slow_gitaly_p99_ms:.0f} ms",
                    {**base, "p99_ms": p99, "limit_ms": limits.slow_gitaly_p99_ms})
        )  # fmt: skip
    if rate > limits.error_rate:
        found.append(
            Tripped("error_spike", f"{where.key} {rate:.1%} failed > {limits.error_rate:.1%}",
                    {**base, "failed": float(agg.failed), "rate": rate, "limit": limits.error_rate})
        )  # fmt: skip
    queue = agg.queue_sum_ms / agg.count
    if where.log_type == "sidekiq" and queue > limits.sidekiq_queue_ms:
        found.append(
            Tripped("sidekiq_latency", f"{where.key} queued {queue:.0f} ms on average",
                    {**base, "queue_mean_ms": queue, "limit_ms": limits.sidekiq_queue_ms})
        )  # fmt: skip
    return found
