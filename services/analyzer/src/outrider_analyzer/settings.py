"""Settings of the analyzer service."""

from pydantic import Field

from outrider_analyzer.findings import Thresholds
from outrider_common.settings import ServiceSettings


class AnalyzerSettings(ServiceSettings):
    """`OUTRIDER_*` environment variables read by the analyzer."""

    http_port: int = Field(8002, description="Port of the analyzer's ops endpoints.")
    consumer_group: str = Field("analyzer", description="Kafka consumer group shared by analyzer replicas.")
    max_records: int = Field(64, gt=0, description="Most Kafka records (chunks) parsed as one batch.")
    max_pending_mb: int = Field(
        64, gt=0, description="MiB of record values that may wait to be parsed and written before consumption pauses."
    )
    malloc_keep_mb: int = Field(
        256,
        ge=0,
        description="MiB of freed memory kept for the next batches instead of returned to the kernel (glibc's "
        "malloc; 0 leaves the C library's defaults): fewer fresh pages to fault in and zero per batch.",
    )
    findings: Thresholds = Field(
        default_factory=Thresholds,
        description="Finding thresholds as JSON, e.g. OUTRIDER_FINDINGS='{\"slow_endpoint_p99_ms\": 3000}'.",
    )
