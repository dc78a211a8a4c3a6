"""The uploader against a local HTTP stub: 503 + Retry-After is waited out with the very same bytes; refusals stop."""

import socket
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from outrider.ship.tailer import Batch
from outrider.ship.uploader import FileRefused, ShipError, Uploader, retry_after_seconds
from tests.ship.stub import Ingest


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
    told: list[str] = []
    uploader.on_retry = told.append
    assert uploader.send(BATCH, "production_json") == 100 + len(BATCH.data)
    assert len(told) == 3
    assert told[0].startswith("ingest answered 503; production_json.log at offset 100 again in 0.3")
    assert [body for _, _, body in ingest.requests] == [BATCH.data] * 4
    assert {path for _, path, _ in ingest.requests} == {
        "/v1/engagements/eng-1/logs?source=host-a&file_id=64769%3A12%3Aabcd1234&offset=100&log_type=production_json"
    }
    gaps = [b[0] - a[0] for a, b in zip(ingest.requests, ingest.requests[1:], strict=False)]
    assert min(gaps[:2]) >= 0.3  # never sooner than Retry-After


def test_a_refused_token_stops_at_once_with_a_clear_message(ingest: Ingest, uploader: Uploader) -> None:
    ingest.answers = [(401, None)]
    with pytest.raises(ShipError, match=r"refused the token \(401\)") as refused:
        uploader.send(BATCH, None)
    assert len(ingest.requests) == 1
    assert "otr_secret" not in f"{refused.value} {uploader!r}"


@pytest.mark.parametrize("status", [404, 405])
def test_a_wrong_url_stops_the_shipper_not_just_the_file(ingest: Ingest, uploader: Uploader, status: int) -> None:
    ingest.answers = [(status, None)]
    with pytest.raises(ShipError, match=f"ingest answered {status} at .*ingest's address") as stopped:
        uploader.send(BATCH, None)
    assert not isinstance(stopped.value, FileRefused)  # the shipper stops, rather than refusing one file after another
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


def closed_port() -> int:
    """A loopback port nothing listens on (taken from the kernel, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(20)
def test_a_refused_connection_is_retried_for_unreachable_s_then_reported_with_the_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    told: list[str] = []
    shipper = Uploader(url, "eng-1", "otr_secret", "host-a", attempts=1000, unreachable_s=0.5, backoff_s=0.05,
                       on_retry=told.append)  # fmt: skip
    started = time.monotonic()
    try:
        with pytest.raises(ShipError, match=f"tries over .* s: ingest not reachable at {url}: ") as gave_up:
            shipper.send(BATCH, None)
    finally:
        shipper.close()
    assert 0.5 <= time.monotonic() - started < 5  # the bound, not the 1000 tries
    assert len(told) >= 2
    assert f"after {len(told) + 1} tries" in str(gave_up.value)


class SeenEnough(Exception):
    pass


@pytest.mark.timeout(20)
def test_a_follower_keeps_retrying_a_refused_connection_past_the_bound() -> None:
    started = time.monotonic()

    def tell(message: str) -> None:
        if time.monotonic() - started > 1.0:  # twice the bound below, had it applied
            raise SeenEnough(message)

    shipper = Uploader(f"http://127.0.0.1:{closed_port()}", "eng-1", "otr_secret", "host-a", attempts=None,
                       unreachable_s=None, backoff_s=0.05, on_retry=tell)  # fmt: skip
    try:
        with pytest.raises(SeenEnough, match="ingest not reachable"):
            shipper.send(BATCH, None)
    finally:
        shipper.close()


def test_the_unreachable_bound_leaves_busy_answers_to_attempts(ingest: Ingest) -> None:
    ingest.answers = [(503, "0.2"), (429, "0.2"), (500, None)]  # 0.4 s and more of waiting, over the bound
    shipper = Uploader(ingest.url, "eng-1", "otr_secret", "host-a", attempts=5, unreachable_s=0.1, backoff_s=0.01)
    try:
        assert shipper.send(BATCH, None) == 100 + len(BATCH.data)
    finally:
        shipper.close()
    assert ingest.statuses == [503, 429, 500, 202]


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 23, 0, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("5") == 5.0
    assert retry_after_seconds("Mon, 23 Nov 2026 00:00:07 GMT", now) == 7.0
    assert retry_after_seconds("86400") == 60.0  # capped: a shipper must not go quiet for a day
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


@pytest.mark.timeout(20)
def test_a_token_no_header_can_carry_is_not_retried_and_never_shown(ingest: Ingest) -> None:
    told: list[str] = []
    shipper = Uploader(ingest.url, "eng-1", "otr_secret\n", "host-a", attempts=5, backoff_s=0.01, on_retry=told.append)
    try:
        with pytest.raises(ShipError, match="token") as refused:
            shipper.send(BATCH, None)
    finally:
        shipper.close()
    assert "otr_secret" not in "".join(traceback.format_exception(refused.value))
    assert told == []
    assert ingest.requests == []


def test_a_url_without_http_or_https_is_not_retried() -> None:
    told: list[str] = []
    shipper = Uploader("ingest.example.com", "eng-1", "otr_secret", "host-a", attempts=5, on_retry=told.append)
    try:
        with pytest.raises(ShipError, match="http:// or https://"):
            shipper.send(BATCH, None)
    finally:
        shipper.close()
    assert told == []


def test_a_message_from_ingest_never_repeats_the_token(ingest: Ingest) -> None:
    shipper = Uploader(ingest.url, "eng-1", "otr_secret", "host-a", attempts=1)
    ingest.answers = [(401, None)]
    ingest.reply = b'{"detail": "unknown token otr_secret"}'
    try:
        with pytest.raises(ShipError, match=r"refused the token \(401\)") as refused:
            shipper.send(BATCH, None)
    finally:
        shipper.close()
    assert "otr_secret" not in str(refused.value)


def test_a_request_timeout_from_a_proxy_is_retried_with_the_same_bytes(ingest: Ingest, uploader: Uploader) -> None:
    # RFC 9110 §15.5.9: a 408 (nginx's client_body_timeout, a load balancer's idle timeout) invites the same request.
    ingest.answers = [(408, None)]
    assert uploader.send(BATCH, None) == 100 + len(BATCH.data)
    assert ingest.statuses == [408, 202]
    assert [body for _, _, body in ingest.requests] == [BATCH.data] * 2


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (b'{"next_offset": %d}' % (100 + len(BATCH.data) + 1), f"next_offset {100 + len(BATCH.data) + 1}, outside"),
        (b'{"next_offset": 1000000000}', "next_offset 1000000000, outside"),  # lines never sent would be skipped
        (b'{"next_offset": -1}', "next_offset -1, outside"),  # the state file would be corrupt at the next start
        (b'{"next_offset": 99}', "next_offset 99, outside"),
        (b"<html>accepted</html>", "without a next_offset"),
        (b'{"accepted": true}', "without a next_offset"),
        (b'{"next_offset": "116"}', "without a next_offset"),
        (b"[116]", "without a next_offset"),
    ],
)
def test_a_202_that_acknowledges_what_was_not_sent_stops_with_the_host_and_value(
    ingest: Ingest, uploader: Uploader, reply: bytes, says: str
) -> None:
    ingest.reply = reply  # a misbehaving server or proxy, not ingest
    with pytest.raises(ShipError, match="answered 202") as stopped:
        uploader.send(BATCH, None)
    assert not isinstance(stopped.value, FileRefused)
    assert says in str(stopped.value)
    assert f"127.0.0.1:{ingest.server.server_address[1]}" in str(stopped.value)
    assert "otr_secret" not in "".join(traceback.format_exception(stopped.value))
    assert len(ingest.requests) == 1  # not retried


@pytest.mark.parametrize("taken", [100, 100 + len(BATCH.data) // 2, 100 + len(BATCH.data)])
def test_a_202_within_the_batch_is_the_offset_returned(ingest: Ingest, uploader: Uploader, taken: int) -> None:
    ingest.reply = b'{"next_offset": %d, "chunks": 1}' % taken
    assert uploader.send(BATCH, None) == taken
