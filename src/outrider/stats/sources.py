"""Reading log inputs: files (plain or gzip, including svlogd's rotated `@4000….s`) and stdin, in blocks."""

import gzip
import io
import itertools
import mmap
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

import logparse
from outrider.stats.render import stderr_console

STDIN = "-"
BLOCK_BYTES = 16 << 20
"""Bytes handed to the parser at once: large enough for all cores, small enough to bound memory, and more than
logparse.MAX_LINE_BYTES, so that a line cut to one block is still too long for the parser."""
PROGRESS_MIN_BYTES = 64 << 20
"""Inputs at least this large get a progress bar on stderr."""
DETECT_BYTES = 64 << 20
"""Bytes of an input held back while none of its lines tells its log type; past that it is read as unknown."""
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


def buffers(block_bytes: int = BLOCK_BYTES) -> list[mmap.mmap]:
    """The buffers `blocks` rotates through; share them across inputs so that memory stays flat. Anonymous maps,
    not bytearrays: the kernel hands out a page when it is first written, where bytearray(16 MiB) zeroes all of
    it up front (three of them took ~35 ms, more than parsing a 25 MB log)."""
    return [mmap.mmap(-1, block_bytes) for _ in range(3)]


class CutShort(Exception):
    """A gzip input ended before its end-of-stream marker; the whole lines before the cut were read."""


def blocks(stream: io.BufferedIOBase, pool: list[mmap.mmap]) -> Iterator[memoryview]:
    """Blocks of whole lines read into reused buffers, so no block is copied on the way to the parser.

    A block stays valid while the next two are read (three buffers rotate, and at most one block is read
    ahead). A line longer than a block comes as its first block alone, and the rest of it is read past: the
    parser counts it once (too_long), and the next line starts the next block. A gzip cut short yields the whole
    lines before the cut, then raises CutShort (EOFError if nothing at all came out of it).
    """
    block_bytes = len(pool[0])
    carry = b""
    started = False
    for k in itertools.count():
        buf = pool[k % len(pool)]
        view = memoryview(buf)
        view[: len(carry)] = carry
        filled = len(carry)
        cut_short = None
        try:
            # readinto1, not readinto: when a gzip ends early, readinto raises and loses what it had read.
            while filled < block_bytes and (n := stream.readinto1(view[filled:])):
                filled += n
                started = True
        except EOFError as e:
            if not started:
                raise
            cut_short = CutShort(str(e))
        if cut_short:
            cut = buf.rfind(b"\n", 0, filled) + 1  # the line at the cut is incomplete
        elif filled < block_bytes:
            cut = filled
        elif not (cut := buf.rfind(b"\n", 0, filled) + 1):  # one line fills the block
            yield view[:filled]
            after = _past_line(stream, pool[(k + 1) % len(pool)])  # the next buffer: this block stays valid
            if after is None:
                return
            carry = after
            continue
        carry = bytes(view[cut:filled])
        if cut:
            yield view[:cut]
        if cut_short:
            raise cut_short
        if filled < block_bytes:
            return


def _past_line(stream: io.BufferedIOBase, scratch: mmap.mmap) -> bytes | None:
    """Read past the rest of the line being read, using `scratch` as the buffer: the bytes after its newline, or
    None if the input ends first."""
    view = memoryview(scratch)
    try:
        while n := stream.readinto1(view):
            if (newline := scratch.find(b"\n", 0, n)) >= 0:
                return bytes(view[newline + 1 : n])
    except EOFError as e:  # a gzip cut short inside the line: what came before it was yielded
        raise CutShort(str(e)) from e
    return None


def _prefetched(it: Iterator[memoryview]) -> Iterator[memoryview]:
    """Read (and gunzip) the next block in a thread while the caller parses this one with the GIL released."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt = pool.submit(next, it, None)
        while (block := nxt.result()) is not None:
            nxt = pool.submit(next, it, None)
            yield block


Route = Callable[[list[str]], logparse.LogReport]
"""The report an input goes to, given the log types its head holds (the most lines first; none if no line tells)."""


def feed(to: logparse.LogReport | Route, sources: Iterable[Source], progress: bool = True) -> list[Source]:
    """Feed every source to one report, or to the report a route picks for each; a progress bar on stderr when
    the inputs are large, and a warning for a gzip cut short. Returns the inputs that held nothing."""
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
    err = stderr_console()
    empty = []
    with Progress(*columns, console=err, transient=True, disable=not show) as bar:
        task = bar.add_task("parsing", total=total)
        pool = buffers(BLOCK_BYTES)
        done = 0
        # One report takes every line, the type it was given deciding: no need to look at the lines first.
        route, detect = (to, True) if callable(to) else ((lambda _types: to), False)
        for source in sources:
            bar.update(task, description=Path(source.name).name)

            def tick(position: int, at: int = done) -> None:
                bar.update(task, completed=at + position)

            read, cut = _feed_one(source, route, detect, pool, tick)
            if cut:  # as zcat does: what came before the cut counts, and the user hears of it
                err.print(
                    f"[yellow]warning:[/yellow] {escape(source.name)}: cut short; read the lines before the cut ({cut})"
                )
            if not read:
                empty.append(source)
            done += source.size()
    return empty


def _feed_one(
    source: Source, route: Route, detect: bool, pool: list[mmap.mmap], tick: Callable[[int], None]
) -> tuple[int, CutShort | None]:
    """Feed one source; the bytes read, and the error of a gzip cut short (what came before the cut is fed).

    A route gets the log types of the first block in which a line tells one (the blocks before it are held, up to
    DETECT_BYTES), so that a pipe, which can be read only once, loses no line."""
    report = None if detect else route([])
    held: list[bytes] = []
    read = 0
    cut = None
    try:
        with source.open() as (stream, raw):
            for block in _prefetched(blocks(stream, pool)):
                read += len(block)
                if report is None:
                    types = logparse.log_types(block)
                    if not types and read < DETECT_BYTES:
                        held.append(bytes(block))  # the pool reuses its buffer two blocks on
                        continue
                    report = route(types)
                    for h in held:
                        report.feed(h)
                    held = []
                report.feed(block)
                if raw is not sys.stdin.buffer and raw.seekable():
                    tick(raw.tell())
    except CutShort as e:
        cut = e
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:  # EOFError: nothing came out of the gzip
        raise InputError(f"{source.name}: {e}") from e
    if held:  # no line told its type
        report = route([])
        for h in held:
            report.feed(h)
    return read, cut
