"""Rules that turn a window's aggregate into findings (pure: thresholds in, findings out)."""

from dataclasses import dataclass

from pydantic import BaseModel, Field

from outrider_common.events import FindingRule
from outrider_common.logstats import Aggregate, StatsKey


class Thresholds(BaseModel):
    """When a window is worth a finding. Defaults follow common SLOs for a GitLab reference architecture."""

    min_count: int = Field(20, ge=1, description="Fewer requests in a window than this never raise a finding.")
    slow_endpoint_p99_ms: float = Field(5000, gt=0, description="Rails/API p99 above this is slow.")
    error_rate: float = Field(0.05, gt=0, le=1, description="Share of failed requests a spike must exceed.")
    error_baseline_minutes: int = Field(
        60,
        ge=0,
        description="A window's failure share is a spike only against the same key's share over this many minutes "
        "before it (0: the share over error_rate alone is a spike).",
    )
    error_spike_factor: float = Field(
        3.0, ge=1, description="How many times the key's share over the baseline minutes a spike must be."
    )
    slow_gitaly_p99_ms: float = Field(1000, gt=0, description="Gitaly RPC p99 above this is slow.")
    sidekiq_queue_ms: float = Field(10_000, gt=0, description="Mean Sidekiq scheduling latency above this.")


@dataclass(frozen=True)
class Baseline:
    """A key's requests and failures over the minutes before a window (`error_baseline_minutes`)."""

    count: int
    failed: int


@dataclass(frozen=True)
class Tripped:
    """A rule that fired for one window, with the evidence."""

    rule: FindingRule
    summary: str
    figures: dict[str, float]


def candidates_sql(first: int) -> str:
    """SQL over `log_stats` columns true for every row `evaluate` could fire on, with `candidate_params` bound from
    placeholder `$first` on. A flush reads back and judges only these rows, not every busy row it wrote (most
    busy windows are quiet).

    Each rule's condition, loosened to hold for every log type, in evaluate's own arithmetic (float8 division), so
    nothing evaluate fires on is left out; tests/test_analyzer_store.py checks that on random windows.
    """
    n, rate, slow, queue = (f"${first + i}" for i in range(4))
    return (
        f"count >= {n} AND (failed::float8 / nullif(count, 0) > {rate} OR duration_max_ms > {slow}"
        f" OR queue_sum_ms / nullif(count, 0) > {queue})"
    )


def candidate_params(limits: Thresholds) -> tuple[int, float, float, float]:
    """The values `candidates_sql` binds, in order."""
    slowest_allowed = min(limits.slow_endpoint_p99_ms, limits.slow_gitaly_p99_ms)
    return limits.min_count, limits.error_rate, slowest_allowed, limits.sidekiq_queue_ms


def may_spike(agg: Aggregate, limits: Thresholds) -> bool:
    """Whether `agg`'s failure share is over the line, so that its key's baseline decides (`evaluate`)."""
    return agg.count >= limits.min_count and agg.failed / agg.count > limits.error_rate


def evaluate(where: StatsKey, agg: Aggregate, limits: Thresholds, baseline: Baseline | None = None) -> list[Tripped]:
    """Every rule `agg` breaks; empty when the window has too few requests to judge.

    An error spike is a failure share over `error_rate` and, when the key has a baseline of at least `min_count`
    requests, `error_spike_factor` times the baseline's share: a key that always fails one call in ten does not
    raise a finding every minute, while its jump to one in two does.
    """
    if agg.count < limits.min_count:
        return []
    found: list[Tripped] = []
    rate = agg.failed / agg.count
    base = {"count": float(agg.count)}
    slow_rules: dict[str, tuple[FindingRule, float]] = {
        "production_json": ("slow_endpoint", limits.slow_endpoint_p99_ms),
        "api_json": ("slow_endpoint", limits.slow_endpoint_p99_ms),
        "gitaly": ("slow_gitaly", limits.slow_gitaly_p99_ms)}  # fmt: skip
    slow = slow_rules.get(where.log_type)
    # p99 ≤ max, so the sketch is only read when the max is over the line.
    if slow is not None and (agg.duration_max_ms or 0.0) > slow[1]:
        rule, limit = slow
        (p99,) = agg.quantiles([0.99])
        if p99 > limit:
            found.append(Tripped(rule, f"{where.key} p99 {p99:.0f} ms > {limit:.0f} ms",
                                 {**base, "p99_ms": p99, "limit_ms": limit}))  # fmt: skip
    usual = None
    if baseline is not None and limits.error_baseline_minutes and baseline.count >= limits.min_count:
        usual = baseline.failed / baseline.count
    if rate > limits.error_rate and (usual is None or rate >= limits.error_spike_factor * usual):
        figures = {**base, "failed": float(agg.failed), "rate": rate, "limit": limits.error_rate}
        summary = f"{where.key} {rate:.1%} failed > {limits.error_rate:.1%}"
        if usual is not None and baseline is not None:
            figures |= {"baseline_rate": usual, "baseline_count": float(baseline.count)}
            summary += f" ({usual:.1%} over the {limits.error_baseline_minutes} min before)"
        found.append(Tripped("error_spike", summary, figures))
    queue = agg.queue_sum_ms / agg.count
    if where.log_type == "sidekiq" and queue > limits.sidekiq_queue_ms:
        found.append(
            Tripped("sidekiq_latency", f"{where.key} queued {queue:.0f} ms on average",
                    {**base, "queue_mean_ms": queue, "limit_ms": limits.sidekiq_queue_ms})
        )  # fmt: skip
    return found
