"""Prometheus metrics of the analyzer service."""

from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from outrider_common.events import FindingRule

LINES = Counter("outrider_analyzer_lines_total", "Log lines parsed, by log type.", ["log_type"])
BYTES = Counter("outrider_analyzer_bytes_total", "Log bytes counted (as LINES: duplicates left out).", [])
BAD_LINES = Counter("outrider_analyzer_bad_lines_total", "Lines that yielded no record, by reason.", ["reason"])
SKIPPED_LINES = Counter(
    "outrider_analyzer_skipped_lines_total",
    "Lines that are not requests and yield no record, by reason (other_log_type: a line of another log type than "
    "the one the uploader named, or of a GitLab log no one reads; unknown_format: no line told its log type).",
    ["reason"],
)
CHUNKS = Counter(
    "outrider_analyzer_chunks_total",
    "Kafka records handled, by outcome (counted, duplicate, dead_letter).",
    ["outcome"],
)
CONFLICTS = Counter(
    "outrider_analyzer_chunk_conflicts_total",
    "Records whose chunk id was counted before with other lines (a range sent again longer): not counted.",
)
FINDINGS = Counter("outrider_analyzer_findings_total", "Findings raised, by rule.", ["rule"])
FLUSH_SECONDS = Histogram(
    "outrider_analyzer_flush_seconds",
    "Time to write one batch's aggregates to PostgreSQL.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# A flush's steps, in order: claim (chunk ids), merge (the batch's rows, in Rust), copy (into the staging table),
# insert (new rows), existing (lock, merge sketches, add), findings (judge and record).
FLUSH_STEPS = ("claim", "merge", "copy", "insert", "existing", "findings")
FLUSH_STEP_SECONDS = Histogram(
    "outrider_analyzer_flush_step_seconds",
    f"Time one flush spends in each step ({', '.join(FLUSH_STEPS)}); merge runs ahead, beside the previous flush.",
    ["step"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
for _step in FLUSH_STEPS:  # every series exported from the start, at zero
    FLUSH_STEP_SECONDS.labels(_step)
FLUSH_ROWS = Histogram(
    "outrider_analyzer_flush_rows",
    "log_stats rows written by one flush.",
    buckets=(1, 5, 10, 50, 100, 500, 1000, 5000, 10000),
)
FLUSH_FAILURES = Counter(
    "outrider_analyzer_flush_failures_total",
    "Flush attempts that failed; the batch is retried from memory, with backoff, until it is written.",
    [],
)
LAG = Gauge(
    "outrider_analyzer_consumer_lag_records",
    "Records of an assigned partition not committed yet (its end offset minus the group's committed offset), "
    "refreshed every few seconds.",
    ["partition"],
)
LAG_REFRESH_FAILURES = Counter(
    "outrider_analyzer_consumer_lag_refresh_failures_total",
    "Refreshes of the consumer-lag gauge that failed (Kafka away); the gauge keeps its last values meanwhile.",
    [],
)

# The series alerts and panels count events in, exported from the start at zero: `increase(...) > 0` cannot see the
# first event of a series that only appears with it (it starts at 1). Not LINES: no alert reads it, and its first
# series is how tests/test_service_ops.py tells that the analyzer counted something.
OUTCOMES = ("counted", "duplicate", "dead_letter")
# Every reason logparse gives a bad line (`Rejection::Bad` in native/logparse/src); a new one appears on first use.
BAD_LINE_REASONS = (
    "bad_time", "duration_out_of_range", "invalid_json", "missing_duration", "missing_key", "negative_duration",
    "not_json", "not_utf8", "time_out_of_range", "too_long", "wrong_type",
)  # fmt: skip
# Every reason logparse skips a line for (`Rejection::Skip`).
SKIP_REASONS = ("job_start", "not_a_call", "not_a_job", "other_log_type", "unknown_format")
for _outcome in OUTCOMES:
    CHUNKS.labels(_outcome)
for _reason in BAD_LINE_REASONS:
    BAD_LINES.labels(_reason)
for _reason in SKIP_REASONS:
    SKIPPED_LINES.labels(_reason)
for _rule in get_args(FindingRule):
    FINDINGS.labels(_rule)
