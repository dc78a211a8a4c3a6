"""Prometheus metrics of the analyzer service."""

from prometheus_client import Counter, Gauge, Histogram

LINES = Counter("outrider_analyzer_lines_total", "Log lines parsed, by log type.", ["log_type"])
BYTES = Counter("outrider_analyzer_bytes_total", "Log bytes parsed.", [])
BAD_LINES = Counter("outrider_analyzer_bad_lines_total", "Lines that yielded no record, by reason.", ["reason"])
CHUNKS = Counter(
    "outrider_analyzer_chunks_total",
    "Kafka records handled, by outcome (counted, duplicate, dead_letter).",
    ["outcome"],
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
    "outrider_analyzer_flush_failures_total", "Batches whose flush failed and will be re-read.", []
)
LAG = Gauge("outrider_analyzer_consumer_lag_records", "Records behind the partition's end, after the last batch.",
            ["partition"])  # fmt: skip
