"""Fast GitLab log statistics: a Rust core that takes bytes of many lines and returns compact aggregates."""

from logparse._logparse import (
    COMPONENTS,
    DIMENSIONS,
    RELATIVE_ACCURACY,
    ChunkStats,
    ErrorEvent,
    ErrorGroup,
    GroupStats,
    KeyStats,
    LogReport,
    Sketch,
    TopRow,
    detect_log_type,
    merge_groups,
    merge_rows,
    merge_sketch_groups,
    merge_sketches,
    parse_chunk,
    parse_chunks,
    sketch_quantiles,
)

LOG_TYPES = ("production_json", "api_json", "gitaly", "sidekiq")

__all__ = [
    "COMPONENTS",
    "DIMENSIONS",
    "LOG_TYPES",
    "RELATIVE_ACCURACY",
    "ChunkStats",
    "ErrorEvent",
    "ErrorGroup",
    "GroupStats",
    "KeyStats",
    "LogReport",
    "Sketch",
    "TopRow",
    "detect_log_type",
    "merge_groups",
    "merge_rows",
    "merge_sketch_groups",
    "merge_sketches",
    "parse_chunk",
    "parse_chunks",
    "sketch_quantiles",
]
