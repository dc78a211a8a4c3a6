"""Reading log inputs: files (plain or gzip, including svlogd's rotated `@4000….s`) and stdin, in blocks."""

import gzip
import io
import itertools
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

import logparse

STDIN = "-"
BLOCK_BYTES = 16 << 20
"""Bytes handed to the parser at once: large enough for all cores, small enough to bound memory."""
PROGRESS_MIN_BYTES = 64 << 20
"""Inputs at least this large get a progress bar on stderr."""
DETECT_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"


class InputError(Exception):
    """An input cannot be read or its log type cannot be told."""


@dataclass(frozen=True)
class Source:
    """One input: a path, or stdin when `path` is `-`."""

    path: str

    @property
    def name(self) -> str:
        return "<stdin>" if self.path == STDIN else self.path

    def size(self) -> int:
        """Bytes on disk (compressed for gzip), 0 for stdin."""
        return 0 if self.path == STDIN else os.path.getsize(self.path)

    @contextmanager
    def open(self) -> Iterator[tuple[io.BufferedIOBase, io.BufferedIOBase]]:
        """The decompressed stream and the raw one (whose position tells progress)."""
        try:
            stdin = cast(io.BufferedIOBase, sys.stdin.buffer)
            raw = stdin if self.path == STDIN else Path(self.path).open("rb")  # noqa: SIM115
        except OSError as e:
            raise InputError(f"{self.name}: {e.strerror}") from e
        try:
            # Rotated svlogd files are gzip without a .gz suffix, so trust the magic bytes, not the name.
            head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
            stream = gzip.GzipFile(fileobj=raw) if head == GZIP_MAGIC else raw
            yield stream, raw
        finally:
            if raw is not sys.stdin.buffer:
                raw.close()


def buffers(block_bytes: int = BLOCK_BYTES) -> list[bytearray]:
    """The buffers `blocks` rotates through; share them across inputs so that memory stays flat."""
    return [bytearray(block_bytes) for _ in range(3)]


def blocks(stream: io.BufferedIOBase, pool: list[bytearray]) -> Iterator[memoryview]:
    """Blocks of whole lines read into reused buffers, so no block is copied on the way to the parser.

    A block stays valid while the next two are read (three buffers rotate, and at most one block is read
    ahead). A line longer than a block is split in two.
    """
    block_bytes = len(pool[0])
    carry = b""
    for k in itertools.count():
        buf = pool[k % len(pool)]
        view = memoryview(buf)
        view[: len(carry)] = carry
        filled = len(carry)
        while filled < block_bytes and (n := stream.readinto(view[filled:])):
            filled += n
        if filled == 0:
            return
        eof = filled < block_bytes
        cut = filled if eof else buf.rfind(b"\n", 0, filled) + 1 or filled
        carry = bytes(view[cut:filled])
        yield view[:cut]
        if eof:
            return


def _prefetched(it: Iterator[memoryview]) -> Iterator[memoryview]:
    """Read (and gunzip) the next block in a thread while the caller parses this one with the GIL released."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt = pool.submit(next, it, None)
        while (block := nxt.result()) is not None:
            nxt = pool.submit(next, it, None)
            yield block


def detect_type(source: Source) -> str | None:
    """The log type of a file from its first lines (stdin cannot be peeked; it is detected while reading)."""
    if source.path == STDIN:
        return None
    try:
        with source.open() as (stream, _):
            head = stream.read(DETECT_BYTES)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise InputError(f"{source.name}: {e}") from e
    return logparse.detect_log_type(head[: head.rfind(b"\n") + 1] or head)


def feed(report: logparse.LogReport, sources: Iterable[Source], progress: bool = True) -> None:
    """Feed every source to `report`, with a progress bar on stderr when the inputs are large."""
    sources = list(sources)
    total = sum(s.size() for s in sources)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    show = progress and total >= PROGRESS_MIN_BYTES
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=not show) as bar:
        task = bar.add_task("parsing", total=total)
        pool = buffers(BLOCK_BYTES)
        done = 0
        for source in sources:
            bar.update(task, description=Path(source.name).name)
            try:
                with source.open() as (stream, raw):
                    for block in _prefetched(blocks(stream, pool)):
                        report.feed(block)
                        if raw is not sys.stdin.buffer:
                            bar.update(task, completed=done + raw.tell())
            except (OSError, EOFError, gzip.BadGzipFile) as e:
                raise InputError(f"{source.name}: {e}") from e
            done += source.size()
