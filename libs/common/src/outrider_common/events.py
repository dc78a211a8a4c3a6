"""Event contracts: versioned pydantic models for what travels through Kafka."""

import re
from datetime import datetime
from typing import Annotated, Literal, get_args
from urllib.parse import quote
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

import logparse

LOG_TYPES = ("production_json", "api_json", "gitaly", "sidekiq")
LogType = Literal["production_json", "api_json", "gitaly", "sidekiq"]
NDJSON = "application/x-ndjson"
Encoding = Literal["identity", "zstd"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters (U+0000-U+001F, U+007F) are not accepted")
    return value


PrintableStr = Annotated[str, AfterValidator(_no_control_characters)]
"""Text without control characters: no host or file is named with them, and PostgreSQL text cannot hold a NUL (a
chunk id with one would fail the analyzer's flush on every retry)."""


class LogChunk(BaseModel):
    """Headers of one `logs.raw` record; the value is a run of whole NDJSON lines.

    `chunk_id` is (source, file id, start offset): a retried upload produces the same id, so the analyzer can
    drop what it has already counted, and two different ones never share it.
    """

    version: int = Field(1, ge=1, le=1, description="Contract version (headers carry it as text).")
    engagement_id: UUID
    source: PrintableStr = Field(min_length=1, max_length=200, description="Host or shipper that read the file.")
    file_id: PrintableStr = Field(
        min_length=1, max_length=500, description="Stable identity of the file (path, inode)."
    )
    offset: int = Field(ge=0, description="Byte offset of the chunk's first line in the file.")
    lines: int = Field(ge=0)
    log_type: LogType | None = Field(None, description="Known log type, or None to auto-detect.")
    encoding: Encoding = Field(
        "identity",
        description="How the value is compressed. Ingest writes zstd in worker threads rather than leaving Kafka "
        "batch compression to the event loops of both ends; the analyzer expands it in Rust as it parses "
        "(logparse.parse_chunks).",
    )

    def pack(self, lines: bytes) -> bytes:
        """The record value that carries `lines` in this chunk's encoding.

        zstd values are one frame with a content checksum, which the analyzer verifies as it expands them: that
        guards each value from ingest to the analyzer, which is why the analyzer skips Kafka's CRC check.
        """
        return logparse.compress_chunk(lines) if self.encoding == "zstd" else lines

    @property
    def chunk_id(self) -> str:
        """Identity of the chunk, unchanged across retries and distinct for distinct (source, file id, offset).

        Names without `|` are joined as they are, so the ids already stored keep their value and a resent chunk
        still dedupes. A `|` in a name would make the parts ambiguous (`a|b` + `c` against `a` + `b|c`): then both
        names are percent-encoded (`|` and `%` too) behind a `quoted` field, three `|` where a plain id has two.
        """
        if "|" not in self.source and "|" not in self.file_id:
            return f"{self.source}|{self.file_id}|{self.offset}"
        return f"quoted|{quote(self.source, safe='')}|{quote(self.file_id, safe='')}|{self.offset}"

    @property
    def key(self) -> bytes:
        """Kafka key: one file's chunks stay on one partition, in order."""
        return f"{self.engagement_id}/{self.source}".encode()

    def to_headers(self) -> dict[str, str]:
        """Kafka record headers (strings), with the content type FastStream must not JSON-decode."""
        fields = self.model_dump(mode="json", exclude_none=True)
        return {"content-type": NDJSON, **{k: str(v) for k, v in fields.items()}}

    @classmethod
    def from_headers(cls, headers: dict[str, str]) -> "LogChunk":
        """Validate record headers; raises `pydantic.ValidationError` naming the bad field."""
        return cls.model_validate({k: v for k, v in headers.items() if k != "content-type"})


class EngagementEvent(BaseModel):
    """A state change of an engagement, published by the tracker through its outbox."""

    version: Literal[1] = 1
    event_id: UUID
    type: str = Field(description="What happened, e.g. `engagement.created`, `stage.advanced`.")
    engagement_id: UUID
    occurred_at: datetime
    data: dict[str, object] = Field(default_factory=dict)


# The analyzer's finding rules: what the tracker's filter and the CLI accept. A finding event keeps `rule` a string,
# so a consumer older than a new rule still reads it.
FindingRule = Literal["slow_endpoint", "error_spike", "slow_gitaly", "sidekiq_latency"]
FINDING_RULES: tuple[str, ...] = get_args(FindingRule)


class Finding(BaseModel):
    """Something in an engagement's logs worth a human's attention, with the evidence."""

    version: Literal[1] = 1
    finding_id: UUID
    engagement_id: UUID
    rule: str = Field(description="slow_endpoint, error_spike, slow_gitaly or sidekiq_latency.")
    log_type: LogType
    key: str
    window_start: datetime
    window_end: datetime
    summary: str
    figures: dict[str, float] = Field(description="The numbers that tripped the rule and its threshold.")
