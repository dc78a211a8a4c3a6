"""Start-up says what it waits for: PostgreSQL that accepts and never answers is retried, logged, then given up on;
aiokafka's connection errors while Kafka is away are thinned out instead of flooding the log."""

import logging
import socket
import time
from collections.abc import Iterator

import psycopg
import pytest
from aiokafka import TopicPartition
from tenacity import AsyncRetrying, RetryCallState

from outrider_analyzer.pipeline import Flusher, Handled
from outrider_common.db import migrate
from outrider_common.telemetry import Repeats


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_migrate_logs_its_wait_retries_and_gives_up(silent_port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="outrider_common.db")
    started = time.monotonic()
    with pytest.raises(psycopg.errors.ConnectionTimeout):
        migrate(f"postgresql://outrider:s3cret@127.0.0.1:{silent_port}/outrider", wait_s=5, connect_timeout_s=2)
    took = time.monotonic() - started
    assert 4 < took < 15  # psycopg's own default would wait 130 s on the first try
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == f"waiting for PostgreSQL at 127.0.0.1:{silent_port}"
    assert any(line.startswith(f"PostgreSQL at 127.0.0.1:{silent_port} not answering attempt=1") for line in lines)
    assert lines[-1].startswith(f"PostgreSQL at 127.0.0.1:{silent_port} did not answer within 5 s")
    assert "s3cret" not in caplog.text


def record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_a_repeated_aiokafka_message_goes_through_once_per_interval_with_the_count_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    repeats = Repeats("aiokafka", every_s=10)
    unable = "Unable connect to node with id %s: %s"
    passed = []
    for i in range(58 * 12):  # 58 a second for 12 s
        now[0] = 1000.0 + i / 58
        line = record("aiokafka.conn", unable, i % 3, "refused")
        if repeats.filter(line):
            passed.append(line.getMessage())
    assert passed == [
        "Unable connect to node with id 0: refused",
        f"Unable connect to node with id {580 % 3}: refused (and 579 more like it in the last 10 s)",
    ]
    assert repeats.filter(record("aiokafka.client", unable, 1, "refused"))  # another logger: its own count
    assert all(repeats.filter(record("outrider_ingest.api", "produce failed")) for _ in range(3))  # not aiokafka's


def test_a_failed_flush_names_its_offsets_and_error(caplog: pytest.LogCaptureFixture) -> None:
    state = RetryCallState(AsyncRetrying(), fn=None, args=(), kwargs={})
    try:
        raise RuntimeError('relation "log_stats" does not exist')
    except RuntimeError as exc:
        state.set_exception((RuntimeError, exc, exc.__traceback__))
    state.upcoming_sleep = 0.5
    raw = [TopicPartition("logs.raw", 1), TopicPartition("logs.raw", 0)]
    batch = [Handled(raw[0], 40, 1), Handled(raw[1], 120, 1), Handled(raw[1], 183, 1), Handled(raw[1], 150, 1)]
    with caplog.at_level(logging.WARNING, logger="outrider_analyzer.pipeline"):
        Flusher._failed(state, batch)
    assert caplog.records[0].getMessage() == (
        "flush failed, retrying in 0.5 s records=4 offsets=logs.raw-0:120-183,logs.raw-1:40 attempt=1"
        " error=RuntimeError('relation \"log_stats\" does not exist')"
    )
