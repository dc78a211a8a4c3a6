from collections.abc import Sequence
from typing import final

__all__ = [
    "COMPONENTS",
    "DIMENSIONS",
    "MAX_LINE_BYTES",
    "RELATIVE_ACCURACY",
    "STAGE_COLUMNS",
    "ChunkStats",
    "ErrorEvent",
    "ErrorGroup",
    "GroupStats",
    "KeyStats",
    "LogReport",
    "Sketch",
    "StagedRows",
    "TopRow",
    "compress_chunk",
    "detect_log_type",
    "log_types",
    "merge_groups",
    "merge_sketch_groups",
    "merge_sketches",
    "parse_chunk",
    "parse_chunks",
    "sketch_quantiles",
    "stage_rows",
]

COMPONENTS: list[str]
"""Component times a format may carry: db, gitaly, redis, cpu, queue."""
DIMENSIONS: list[str]
"""What the top view ranks: user, project, client, path."""
RELATIVE_ACCURACY: float
"""Relative error bound of every sketch quantile (0.01)."""
MAX_LINE_BYTES: int
"""Longest line parsed (1 MiB, after trimming); a longer one is a bad line, too_long."""

@final
class GroupStats:
    """Aggregates of one key in one time bucket, with a mergeable sketch of its durations."""

    @property
    def key(self) -> str:
        """controller#action, METHOD route, gRPC method or Sidekiq worker class."""
    @property
    def bucket_start(self) -> int:
        """Start of the bucket, seconds since the epoch (0 when the lines carry no time)."""
    @property
    def count(self) -> int: ...
    @property
    def failed(self) -> int:
        """HTTP status ≥ 500, gRPC code other than OK, or Sidekiq job_status fail."""
    @property
    def duration_sum_ms(self) -> float: ...
    @property
    def duration_sumsq_ms2(self) -> float:
        """Sum of squared durations, for a population standard deviation after merging."""
    @property
    def duration_min_ms(self) -> float: ...
    @property
    def duration_max_ms(self) -> float: ...
    @property
    def db_sum_ms(self) -> float: ...
    @property
    def gitaly_sum_ms(self) -> float: ...
    @property
    def redis_sum_ms(self) -> float: ...
    @property
    def cpu_sum_ms(self) -> float: ...
    @property
    def queue_sum_ms(self) -> float:
        """Workhorse queueing (Rails) or scheduling latency (Sidekiq)."""
    @property
    def sketch(self) -> bytes:
        """Serialised quantile sketch of the durations in ms; see merge_sketches and sketch_quantiles."""

@final
class ChunkStats:
    """What one chunk of lines yielded."""

    @property
    def log_type(self) -> str | None:
        """production_json, api_json, gitaly or sidekiq (the one named, or else the one most lines have); None when
        no line was recognised."""
    @property
    def lines(self) -> int:
        """Non-blank lines read."""
    @property
    def by_type(self) -> list[tuple[str, int, float | None, float | None]]:
        """Per log type: its lines, and its first and last record's time; `log_type` first. Without a named log type,
        a chunk whose lines tell several (a Helm pod's stdout) counts each line under its own; else one type."""
    @property
    def size(self) -> int:
        """Bytes of lines parsed (after expanding a compressed value)."""
    @property
    def bad_lines(self) -> dict[str, int]:
        """Defective lines by reason (not_json, invalid_json, not_utf8, too_long, missing_key, negative_duration,
        duration_out_of_range: over 1e12 ms, time_out_of_range: a time before 1970 or past the year 9999, bad_time:
        a `time` that is not ISO-8601 or epoch seconds…)."""
    @property
    def skipped(self) -> dict[str, int]:
        """Legitimate lines that are not requests, by reason (job_start, not_a_call, other_log_type, ...)."""
    @property
    def samples(self) -> list[tuple[str, str]]:
        """A few defective lines as (reason, truncated line)."""
    @property
    def start_time(self) -> float | None:
        """Earliest record time, seconds since the epoch."""
    @property
    def end_time(self) -> float | None:
        """Latest record time, seconds since the epoch."""
    @property
    def components(self) -> list[str]:
        """Component times some record carried."""
    @property
    def groups(self) -> list[GroupStats]:
        """One entry per (key, time bucket), of every log type; built on each access."""
    def groups_of(self, log_type: str) -> list[GroupStats]:
        """One entry per (key, time bucket) of one log type's lines."""

@final
class KeyStats:
    """Statistics of one key (or of all, key "TOTAL") over the input or one interval; durations in ms."""

    @property
    def key(self) -> str: ...
    @property
    def bucket_start(self) -> int | None:
        """Start of the interval, seconds since the epoch (0 for records without a time); None without an interval."""
    @property
    def count(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def perc_failed(self) -> float: ...
    @property
    def rps(self) -> float:
        """Count over the whole input's time span (or over the interval's length); NaN when that span is 0."""
    @property
    def p99_ms(self) -> float: ...
    @property
    def p95_ms(self) -> float: ...
    @property
    def median_ms(self) -> float: ...
    @property
    def max_ms(self) -> float: ...
    @property
    def min_ms(self) -> float: ...
    @property
    def stddev_ms(self) -> float:
        """Population standard deviation."""
    @property
    def score(self) -> float:
        """count * p99_ms."""
    @property
    def duration_sum_ms(self) -> float: ...
    @property
    def db_sum_ms(self) -> float: ...
    @property
    def gitaly_sum_ms(self) -> float: ...
    @property
    def redis_sum_ms(self) -> float: ...
    @property
    def cpu_sum_ms(self) -> float: ...
    @property
    def queue_sum_ms(self) -> float: ...

@final
class TopRow:
    """Resource use of one user, project, client or path ("(none)" for records without one), or of all ("TOTAL")."""

    @property
    def value(self) -> str: ...
    @property
    def bucket_start(self) -> int | None:
        """Start of the interval, seconds since the epoch (0 for records without a time); None without an interval."""
    @property
    def count(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def rps(self) -> float:
        """Count over the whole input's time span (or over the interval's length), as KeyStats.rps."""
    @property
    def duration_sum_ms(self) -> float: ...
    @property
    def db_sum_ms(self) -> float: ...
    @property
    def gitaly_sum_ms(self) -> float: ...
    @property
    def redis_sum_ms(self) -> float: ...
    @property
    def cpu_sum_ms(self) -> float: ...
    @property
    def queue_sum_ms(self) -> float: ...
    @property
    def mem_bytes(self) -> float:
        """Bytes allocated serving them (the lines' mem_bytes; 0 where absent, and for Gitaly)."""

@final
class ErrorEvent:
    """One failed request of an error group."""

    @property
    def time(self) -> float | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def key(self) -> str: ...
    @property
    def user(self) -> str | None: ...
    @property
    def project(self) -> str | None: ...

@final
class ErrorGroup:
    """One kind of failure: HTTP status and exception class, gRPC code, or Sidekiq error class."""

    @property
    def error(self) -> str: ...
    @property
    def bucket_start(self) -> int | None:
        """Start of the interval, seconds since the epoch (0 for records without a time); None without an interval."""
    @property
    def count(self) -> int: ...
    @property
    def first_time(self) -> float | None: ...
    @property
    def last_time(self) -> float | None: ...
    @property
    def key(self) -> str:
        """The key of the earliest record that showed it (ties: the first in input order)."""
    @property
    def sample(self) -> str:
        """The earliest line that showed it, truncated."""
    @property
    def events(self) -> list[ErrorEvent]:
        """Its five earliest requests by time (untimed last, ties in input order)."""

@final
class LogReport:
    """Whole-input statistics, fed block by block: exact percentiles by default, sketches with exact=False."""

    def __new__(
        cls,
        log_type: str | None = None,
        interval_seconds: int = 0,
        exact: bool = True,
        top: bool = False,
        errors: bool = False,
    ) -> LogReport: ...
    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Parse newline-separated lines (GIL released, all cores); a block must end at a line boundary.

        Buffers other than bytes are read in place and must not change during the call.
        """
    @property
    def log_type(self) -> str | None: ...
    @property
    def lines(self) -> int: ...
    @property
    def bad_lines(self) -> dict[str, int]: ...
    @property
    def skipped(self) -> dict[str, int]: ...
    @property
    def samples(self) -> list[tuple[str, str]]: ...
    @property
    def start_time(self) -> float | None: ...
    @property
    def end_time(self) -> float | None: ...
    @property
    def components(self) -> list[str]: ...
    @property
    def mem_seen(self) -> bool:
        """Whether some record carried mem_bytes (no Gitaly one does; needs top=True)."""
    def key_stats(self) -> list[KeyStats]:
        """Statistics per key (and per interval), sorted by interval then key."""
    def totals(self) -> list[KeyStats]:
        """Statistics over all keys, one per interval."""
    def top(self, dimension: str) -> list[TopRow]:
        """Resource use per value of a dimension in DIMENSIONS (needs top=True)."""
    def top_totals(self) -> list[TopRow]:
        """Resource use of all records, value "TOTAL", one per interval (needs top=True)."""
    def errors(self) -> list[ErrorGroup]:
        """Failures grouped by kind (needs errors=True)."""

STAGE_COLUMNS: list[str]
"""Columns of each row stage_rows writes, in order (name them in the COPY)."""

@final
class StagedRows:
    """A flush's rows as a binary COPY stream (stage_rows)."""

    @property
    def copy(self) -> bytes:
        """Signature, header, one tuple per row with the STAGE_COLUMNS, trailer."""
    def __len__(self) -> int: ...
    def sketch(self, n: int) -> bytes:
        """The serialised sketch row n was staged with; ValueError past the last row."""

@final
class Sketch:
    """A mergeable quantile sketch of durations (relative error ≤ 1%)."""

    def __new__(cls) -> Sketch: ...
    @staticmethod
    def from_bytes(data: bytes) -> Sketch:
        """Raises ValueError on bytes that are not a sketch."""
    def to_bytes(self) -> bytes: ...
    def add(self, value: float) -> None: ...
    def extend(self, values: list[float]) -> None: ...
    def merge(self, other: Sketch) -> None: ...
    def quantile(self, q: float) -> float:
        """Linear interpolation at rank q*(count-1), like the exact stats, within the relative error; NaN if empty."""
    @property
    def count(self) -> int: ...
    @property
    def min(self) -> float | None: ...
    @property
    def max(self) -> float | None: ...

def parse_chunk(data: bytes, log_type: str | None = None, bucket_seconds: int = 60) -> ChunkStats:
    """Aggregate newline-separated lines per key and time bucket (GIL released); never raises on bad lines."""

def parse_chunks(items: Sequence[tuple[bytes, str | None, bool]], bucket_seconds: int = 60) -> list[ChunkStats | str]:
    """Expand (when the flag says zstd) and parse many chunks in one call, GIL released once, on all cores.

    Each item is (value, log_type, zstd); each result a ChunkStats, or a str saying why the value could not be
    read (not zstd, damaged so that its checksum does not match, or too large).
    """

def compress_chunk(data: bytes, level: int = 3) -> bytes:
    """One zstd frame of data that states its size and ends with a content checksum (GIL released).

    What ingest writes to logs.raw; parse_chunks verifies the checksum as it expands the value.
    """

def detect_log_type(data: bytes) -> str | None:
    """The log type most lines at the head of data belong to, or None."""

def log_types(data: bytes | bytearray | memoryview) -> list[str]:
    """The log types the head of data holds (its first 1000 lines that tell theirs), the most lines first; empty
    when no line tells its type. Buffers other than bytes are read in place (GIL released)."""

def merge_sketches(a: bytes, b: bytes) -> bytes:
    """The sketch of both inputs' values; raises ValueError on bytes that are not a sketch."""

def merge_sketch_groups(groups: list[list[bytes | None]]) -> list[bytes | None]:
    """One sketch per group, the merge of its sketches (None skipped; None for a group with none).

    Runs without the GIL, groups spread over all cores; raises ValueError on bytes that are not a sketch.
    """

def merge_groups(chunks: list[ChunkStats]) -> list[GroupStats]:
    """The groups of all `chunks` added together, one per (key, time bucket); chunks of one log type."""

def stage_rows(streams: list[tuple[bytes, str, list[ChunkStats]]]) -> StagedRows:
    """Each stream's chunks (engagement id as UUID.bytes, log type, chunks) added together as merge_groups does,
    one row per key and time bucket, in PostgreSQL's binary COPY format with the columns STAGE_COLUMNS names.
    Rows are numbered from 0 in one order every caller shares (engagement bytes, log type, key bytes, bucket), so
    writers that lock rows in row-number order never deadlock. Merging and encoding run without the GIL.
    """

def sketch_quantiles(sketch: bytes, qs: list[float]) -> list[float]:
    """Quantiles of a serialised sketch (NaN when it is empty)."""
