"""The uploader against a local HTTP stub: 503 + Retry-After is waited out with the very same bytes; refusals stop."""

import gzip
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from outrider.ship.tailer import Batch
from outrider.ship.uploader import ShipError, Uploader, retry_after_seconds


class Ingest:
    """Answers POSTs with the queued (status, Retry-After) pairs, then 202; records each request's body and query."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, str | None]] = []
        self.requests: list[tuple[float, str, bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = gzip.decompress(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append((time.monotonic(), self.path, body))
                status, after = stub.answers.pop(0) if stub.answers else (202, None)
                reply = b'{"next_offset": %d}' % (int(self.path.split("offset=")[1].split("&")[0]) + len(body))
                self.send_response(status)
                if after is not None:
                    self.send_header("Retry-After", after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    stub = Ingest()
    yield stub
    stub.close()


@pytest.fixture
def uploader(ingest: Ingest) -> Iterator[Uploader]:
    shipper = Uploader(ingest.url, "eng-1", "otr_secret", "host-a", attempts=5, backoff_s=0.01)
    yield shipper
    shipper.close()


BATCH = Batch(Path("production_json.log"), "64769:12:abcd1234", 100, b'{"a":1}\n{"a":2}\n')


def test_503_with_retry_after_is_waited_out_and_resends_exactly_the_same_bytes(
    ingest: Ingest, uploader: Uploader
) -> None:
    ingest.answers = [(503, "0.3"), (503, "0.3"), (502, None)]
    assert uploader.send(BATCH, "production_json") == 100 + len(BATCH.data)
    assert [body for _, _, body in ingest.requests] == [BATCH.data] * 4
    assert {path for _, path, _ in ingest.requests} == {
        "/v1/engagements/eng-1/logs?source=host-a&file_id=64769%3A12%3Aabcd1234&offset=100&log_type=production_json"
    }
    gaps = [b[0] - a[0] for a, b in zip(ingest.requests, ingest.requests[1:], strict=False)]
    assert min(gaps[:2]) >= 0.3  # never sooner than Retry-After


def test_a_refused_token_stops_at_once_with_a_clear_message(ingest: Ingest, uploader: Uploader) -> None:
    ingest.answers = [(401, None)]
    with pytest.raises(ShipError, match=r"refused the token \(401\)"):
        uploader.send(BATCH, None)
    assert len(ingest.requests) == 1


def test_a_line_too_long_names_the_file_and_offset(ingest: Ingest, uploader: Uploader) -> None:
    ingest.answers = [(413, None)]
    with pytest.raises(ShipError, match=r"production_json.log at offset 100 \(413\)"):
        uploader.send(BATCH, None)


def test_retries_are_bounded_when_asked(ingest: Ingest, uploader: Uploader) -> None:
    ingest.answers = [(503, "0")] * 5
    with pytest.raises(ShipError, match="after 5 tries"):
        uploader.send(BATCH, None)
    assert len(ingest.requests) == 5


def test_an_unreachable_ingest_is_retried_then_reported() -> None:
    shipper = Uploader("http://127.0.0.1:9", "eng-1", "otr_secret", "host-a", attempts=2, timeout=1, backoff_s=0.01)
    try:
        with pytest.raises(ShipError, match="not reachable"):
            shipper.send(BATCH, None)
    finally:
        shipper.close()


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 23, 0, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("5") == 5.0
    assert retry_after_seconds("Mon, 23 Nov 2026 00:00:07 GMT", now) == 7.0
    assert retry_after_seconds("86400") == 60.0  # capped: a shipper must not go quiet for a day
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
