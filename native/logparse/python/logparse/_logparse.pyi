class GroupStats:
    """Aggregates of one key in one time bucket."""

    @property
    def key(self) -> str: ...
    @property
    def bucket_start(self) -> int:
        """Start of the bucket, seconds since the epoch (0 when the lines carry no time)."""
    @property
    def count(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def duration_sum_ms(self) -> float: ...

class ChunkStats:
    """What one chunk of lines yielded."""

    @property
    def lines(self) -> int: ...
    @property
    def bad_lines(self) -> dict[str, int]:
        """Lines that yielded no record, by reason."""
    @property
    def groups(self) -> list[GroupStats]: ...

def parse_chunk(data: bytes, bucket_seconds: int = 60) -> ChunkStats:
    """Parse newline-separated log lines (GIL released) and aggregate them per key and time bucket."""
