"""Reading in blocks: whole lines, every byte once, buffers reused without corrupting earlier blocks."""

import io

import pytest

from outrider.stats.sources import blocks, buffers

DATA = b"".join(b"line %d %s\n" % (i, b"x" * (i % 7)) for i in range(200)) + b"last line without newline"


@pytest.mark.parametrize("size", [32, 33, 64, 1000, 10_000])  # lines are at most 16 bytes
def test_blocks_are_whole_lines_and_cover_the_input(size: int) -> None:
    got = [bytes(b) for b in blocks(io.BufferedReader(io.BytesIO(DATA)), buffers(size))]
    assert b"".join(got) == DATA
    assert all(b.endswith(b"\n") for b in got[:-1])


def test_a_line_longer_than_a_block_is_split() -> None:
    got = [bytes(b) for b in blocks(io.BytesIO(b"a" * 10 + b"\nb\n"), buffers(4))]
    assert b"".join(got) == b"a" * 10 + b"\nb\n"
    assert got[0] == b"aaaa"


def test_a_block_survives_the_next_two_reads() -> None:
    it = blocks(io.BytesIO(DATA), buffers(32))
    first = next(it)
    kept = bytes(first)
    next(it), next(it)
    assert bytes(first) == kept
