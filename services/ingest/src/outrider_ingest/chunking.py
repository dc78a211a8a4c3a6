"""Cutting a byte stream into records of whole lines (pure, no I/O)."""

from collections.abc import Iterator
from dataclasses import dataclass


class LineTooLong(ValueError):
    """A single line exceeds the configured limit."""


@dataclass(frozen=True)
class Piece:
    """A run of whole lines and where it starts in the file."""

    offset: int
    data: bytes
    lines: int


class LineChunker:
    """Accumulates bytes and hands out pieces of about `target` bytes that end on a newline."""

    def __init__(self, *, start_offset: int, target: int, max_line: int) -> None:
        if target > max_line:
            raise ValueError("target must not exceed max_line")
        self._buffer = bytearray()
        self._offset = start_offset
        self._target = target
        self._max_line = max_line

    @property
    def next_offset(self) -> int:
        """File offset just after the last byte handed out."""
        return self._offset

    def feed(self, data: bytes) -> Iterator[Piece]:
        """Add `data`; yield every full piece now available."""
        self._buffer += data
        while len(self._buffer) >= self._target:
            cut = self._buffer.rfind(b"\n", 0, self._target)
            if cut < 0:  # the first line alone is longer than a piece
                cut = self._buffer.find(b"\n", self._target)
                if cut < 0:
                    self._check_open_line()
                    return
                if cut + 1 > self._max_line:
                    raise LineTooLong(f"a line is longer than {self._max_line} bytes")
            yield self._take(cut + 1)

    def finish(self) -> Iterator[Piece]:
        """Yield what is left; a last line without a newline still counts as a line."""
        self._check_open_line()
        if self._buffer:
            yield self._take(len(self._buffer))

    def _check_open_line(self) -> None:
        if len(self._buffer) > self._max_line and b"\n" not in self._buffer:
            raise LineTooLong(f"a line is longer than {self._max_line} bytes")

    def _take(self, n: int) -> Piece:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        piece = Piece(offset=self._offset, data=data, lines=data.count(b"\n") + (not data.endswith(b"\n")))
        self._offset += n
        return piece
