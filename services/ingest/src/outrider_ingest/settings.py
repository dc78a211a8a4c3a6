"""Settings of the ingest service."""

from pydantic import Field

from outrider_common.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    """`OUTRIDER_*` environment variables read by ingest."""

    http_port: int = Field(8001, description="Port of the ingest HTTP API.")
    chunk_bytes: int = Field(1 << 20, ge=1024, description="Target size of one Kafka record (whole lines).")
    max_line_bytes: int = Field(4 << 20, ge=1024, description="Longest accepted log line; longer gives 413.")
    max_body_bytes: int = Field(
        256 << 20,
        ge=1024,
        description="Most bytes one request may expand to (after gzip or deflate), and may be as sent; more gives 413.",
    )
    max_in_flight: int = Field(
        8,
        ge=1,
        le=64,
        description="Records of one upload produced at once, of at most max_in_flight * chunk_bytes together (8 MiB"
        " by default); a record of longer lines than that goes alone.",
    )
    max_uploads: int = Field(
        32,
        ge=1,
        description="Uploads taken at once; more get 503 + Retry-After, which the shipper waits out. Each holds at most"
        " (max_in_flight + 1) * chunk_bytes + max_line_bytes of log bytes whatever its lines' length (13 MiB by"
        " default, 416 MiB for 32 uploads), plus the zstd values of its records in flight and the producer's copies"
        " of them (a fraction of that for log lines, up to twice max_in_flight * chunk_bytes more for bytes that do"
        " not compress).",
    )
    max_uploads_per_engagement: int | None = Field(
        None,
        ge=1,
        description="Uploads of one engagement taken at once, so that one token cannot hold every place; more get"
        " 503 + Retry-After. Unset: a quarter of max_uploads, at least 1.",
    )
    body_idle_timeout_s: float = Field(
        30.0,
        gt=0,
        description="How long an upload may send no body bytes before it is answered 408 and its place freed.",
    )
    body_timeout_s: float = Field(
        600.0,
        gt=0,
        description="How long an upload's body may take in all before it is answered 408 and its place freed: a "
        "client trickling a byte now and then (under body_idle_timeout_s) would hold its place for good. The "
        "shipper's batches of 8 MiB take seconds.",
    )
    produce_timeout_s: float = Field(30.0, gt=0, description="How long to wait for Kafka before answering 503.")
    database_timeout_s: float = Field(
        5.0,
        gt=0,
        description="How long to wait for PostgreSQL to check an upload token before answering 503 (twice that when"
        " a query must be cancelled).",
    )

    @property
    def uploads_per_engagement(self) -> int:
        """`max_uploads_per_engagement`, or its default: a quarter of `max_uploads`, at least 1."""
        return self.max_uploads_per_engagement or max(1, self.max_uploads // 4)
