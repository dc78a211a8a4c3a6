"""Cutting uploads into Kafka records of whole lines."""

import pytest

from outrider_ingest.chunking import LineChunker, LineTooLong


def cut(data: bytes, *, target: int, max_line: int = 1000, feed_size: int = 3, start: int = 0) -> list[tuple]:
    chunker = LineChunker(start_offset=start, target=target, max_line=max_line)
    pieces = []
    for i in range(0, len(data), feed_size):
        pieces += chunker.feed(data[i : i + feed_size])
    pieces += chunker.finish()
    return [(p.offset, p.data, p.lines) for p in pieces]


def test_pieces_end_on_newlines_and_carry_file_offsets() -> None:
    data = b"aaaa\nbbbb\ncccc\ndddd\n"
    assert cut(data, target=10, start=100) == [(100, b"aaaa\nbbbb\n", 2), (110, b"cccc\ndddd\n", 2)]


def test_a_line_longer_than_the_target_is_its_own_piece() -> None:
    data = b"a\n" + b"x" * 25 + b"\nb\n"
    assert cut(data, target=10) == [(0, b"a\n", 1), (2, b"x" * 25 + b"\n", 1), (28, b"b\n", 1)]


def test_last_line_without_newline_still_counts() -> None:
    assert cut(b"one\ntwo", target=100) == [(0, b"one\ntwo", 2)]


def test_reassembles_exactly_whatever_the_read_sizes() -> None:
    data = b"".join(b"line %d %s\n" % (i, b"y" * (i % 17)) for i in range(200))
    for feed_size in (1, 7, 64, 4096):
        pieces = cut(data, target=64, feed_size=feed_size)
        assert b"".join(p[1] for p in pieces) == data
        assert sum(p[2] for p in pieces) == 200
        assert all(p[1].endswith(b"\n") for p in pieces)
        assert [p[0] for p in pieces] == [sum(len(q[1]) for q in pieces[:i]) for i in range(len(pieces))]


@pytest.mark.parametrize("data", [b"z" * 51, b"ok\n" + b"z" * 51 + b"\n"])
def test_a_line_over_the_limit_is_refused(data: bytes) -> None:
    with pytest.raises(LineTooLong):
        cut(data, target=10, max_line=50)


def test_target_above_the_line_limit_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="target"):
        LineChunker(start_offset=0, target=100, max_line=10)
