"""Reading in blocks: whole lines, every byte once, buffers reused without corrupting earlier blocks."""

import io

import pytest

import logparse
from outrider.stats.sources import BLOCK_BYTES, blocks, buffers

DATA = b"".join(b"line %d %s\n" % (i, b"x" * (i % 7)) for i in range(200)) + b"last line without newline"


@pytest.mark.parametrize("size", [32, 33, 64, 1000, 10_000])  # lines are at most 16 bytes
def test_blocks_are_whole_lines_and_cover_the_input(size: int) -> None:
    got = [bytes(b) for b in blocks(io.BufferedReader(io.BytesIO(DATA)), buffers(size))]
    assert b"".join(got) == DATA
    assert all(b.endswith(b"\n") for b in got[:-1])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a" * 10 + b"\nb\n", [b"aaaa", b"b\n"]),
        (b"aaaa\nb\n", [b"aaaa", b"b\n"]),  # the newline is the first byte past the block
        (b"x\n" + b"a" * 10, [b"x\n", b"aaaa"]),  # the input ends inside the line
        (b"x\n" + b"a" * 9 + b"\n" + b"b" * 5 + b"\nc", [b"x\n", b"aaaa", b"bbbb", b"c"]),
    ],
)
def test_a_line_longer_than_a_block_comes_as_its_first_block_alone(data: bytes, expected: list[bytes]) -> None:
    """The parser counts the head once (too_long, as a block is longer than any line it parses); the rest is
    read past, not taken for another line."""
    assert [bytes(b) for b in blocks(io.BytesIO(data), buffers(4))] == expected


def test_a_line_cut_to_a_block_is_still_too_long_for_the_parser() -> None:
    assert BLOCK_BYTES > logparse.MAX_LINE_BYTES


def test_a_block_survives_the_next_two_reads() -> None:
    it = blocks(io.BytesIO(DATA), buffers(32))
    first = next(it)
    kept = bytes(first)
    next(it), next(it)
    assert bytes(first) == kept
