"""Prometheus metrics of the analyzer service."""

from prometheus_client import Counter, Histogram

LINES = Counter("outrider_analyzer_lines_total", "Log lines parsed, by log type.", ["log_type"])
BYTES = Counter("outrider_analyzer_bytes_total", "Log bytes parsed.", [])
BAD_LINES = Counter("outrider_analyzer_bad_lines_total", "Lines that yielded no record, by reason.", ["reason"])
CHUNKS = Counter(
    "outrider_analyzer_chunks_total",
    "Kafka records handled, by outcome (counted, duplicate, dead_letter).",
    ["outcome"],
)
FLUSH_SECONDS = Histogram(
    "outrider_analyzer_flush_seconds",
    "Time to write one batch's aggregates to PostgreSQL.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
