"""Prometheus metrics of the ingest service."""

from prometheus_client import Counter, Gauge, Histogram

BYTES = Counter("outrider_ingest_bytes_total", "Log bytes received (uncompressed), by outcome.", ["outcome"])
LINES = Counter(
    "outrider_ingest_lines_total",
    "Log lines accepted into Kafka, blank ones included (the analyzer does not count those; counting them here would "
    "cost a scan of every line).",
    [],
)
RECORDS = Counter("outrider_ingest_records_total", "Kafka records produced, by outcome.", ["outcome"])
REJECTED = Counter("outrider_ingest_requests_rejected_total", "Upload requests refused, by reason.", ["reason"])
PRODUCE_SECONDS = Histogram(
    "outrider_ingest_produce_seconds",
    "Time from handing a record to Kafka until it is acknowledged.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPLOADS = Gauge("outrider_ingest_uploads_in_progress", "Uploads being taken now (at most OUTRIDER_MAX_UPLOADS).")
IN_FLIGHT = Gauge("outrider_ingest_in_flight_bytes", "Bytes read from clients and not yet acknowledged by Kafka.")
