"""The uploader against a local HTTP stub: 503 + Retry-After is waited out with the very same bytes; refusals stop."""

import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from outrider.ship.tailer import Batch
from outrider.ship.uploader import ShipError, Uploader, retry_after_seconds
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
