"""Fast GitLab log statistics: a Rust core that takes bytes of many lines and returns compact aggregates."""

from logparse._logparse import ChunkStats, GroupStats, parse_chunk

__all__ = ["ChunkStats", "GroupStats", "parse_chunk"]
