"""Ingest when PostgreSQL is away: the token check answers 503 with Retry-After, never 500 or a hang."""

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from outrider.devstack import free_port
from tests.stack import open_engagement, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
LINE = b'{"controller":"A","action":"b","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:00Z"}\n'
LOOKUP_TIMEOUT_S = 2.0


class Relay:
    """A TCP relay to one server on a port of its own, which the test can make stop answering or refuse connections.

    Only the service given the relay's address loses its database; the session's PostgreSQL and every other test
    go on.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.silent = False  # connections stay open (and new ones are accepted) but no byte goes through
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.restore()

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def restore(self) -> None:
        """Relay again, listening if it was cut."""
        self.silent = False
        if self._server is None:
            self._run(self._listen())

    def silence(self) -> None:
        """Keep every connection open but pass nothing on: a server (or network) that stops answering."""
        self.silent = True

    def cut(self) -> None:
        """Reset every connection and stop listening: a server that is down (connection refused)."""
        self._run(self._close())

    def stop(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.add(server_writer)
        await asyncio.gather(
            self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                if not self.silent:
                    writer.write(data)
                    await writer.drain()
        finally:
            writer.transport.abort()


@contextmanager
def relayed(dsn: str) -> Iterator[tuple[Relay, str]]:
    """A relay to `dsn`'s server and the DSN that reaches the same database through it."""
    parts = urlsplit(dsn)
    assert parts.hostname
    assert parts.port
    relay = Relay(parts.hostname, parts.port)
    netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{relay.port}"
    try:
        yield relay, parts._replace(netloc=netloc).geturl()
    finally:
        relay.stop()


def test_database_away_during_the_token_check_gives_503_with_retry_after(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    common = {"kafka": kafka_bootstrap, "topic_prefix": topic_prefix, "logs": tmp_path}
    with (
        relayed(database_dsn) as (relay, ingest_dsn),
        running_services(**common, dsn=database_dsn, names=("tracker",)) as tracker_svc,
        running_services(
            **common, dsn=ingest_dsn, names=("ingest",),
            settings={"OUTRIDER_DATABASE_TIMEOUT_S": str(LOOKUP_TIMEOUT_S)},
        ) as ingest_svc,
    ):  # fmt: skip
        tracker, ingest = tracker_svc["tracker"].url, ingest_svc["ingest"].url
        engagement, auth = open_engagement(tracker)
        _, their_auth = open_engagement(tracker, "theirs")
        url = f"{ingest}/v1/engagements/{engagement}/logs"
        params = {"source": "host", "file_id": "f", "log_type": "production_json"}

        def upload(headers: dict[str, str]) -> httpx.Response:
            return httpx.post(url, params=params, content=LINE, headers=headers, timeout=20)

        assert upload(auth).status_code == 202

        def assert_retry_later(within_s: float) -> None:
            started = time.monotonic()
            away = upload(auth)
            assert away.status_code == 503, away.text
            assert int(away.headers["retry-after"]) > 0
            assert "PostgreSQL" in away.json()["detail"]
            assert time.monotonic() - started < within_s

        relay.silence()  # the pool's connections hang: the lookup's bound answers (twice it, to cancel the query)
        assert_retry_later(within_s=2 * LOOKUP_TIMEOUT_S + 3)
        relay.cut()  # connections reset, new ones refused: at once, or at worst the lookup's bound (+ a loaded machine)
        assert_retry_later(within_s=LOOKUP_TIMEOUT_S + 3)
        # No token needs no database: still 401, not 503.
        assert upload({}).status_code == 401
        assert (
            'outrider_ingest_requests_rejected_total{reason="database_unavailable"} 2.0'
            in httpx.get(f"{ingest}/metrics").text
        )

        relay.restore()
        deadline = time.monotonic() + 30
        while (back := upload(auth)).status_code != 202:
            assert back.status_code == 503, back.text
            assert time.monotonic() < deadline, "ingest never checked tokens again after PostgreSQL came back"
            time.sleep(0.2)
        assert upload({"Authorization": "Bearer otr_not-a-real-token"}).status_code == 401
        assert upload(their_auth).status_code == 403
