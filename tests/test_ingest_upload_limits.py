"""What one engagement's token can hold of ingest: no more bytes on the wire than the body limit, no upload place
for a body that stops coming, and no more than its share of the upload places."""

import gzip
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from outrider_ingest.settings import IngestSettings
from tests.stack import open_engagement, running_services

LINE = b'{"controller":"A","action":"b","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:00Z"}\n'


def upload(ingest: str, engagement: str, body: bytes | Iterator[bytes], headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{ingest}/v1/engagements/{engagement}/logs", params={"source": "host", "file_id": "f"},
                      content=body, headers=headers, timeout=30)  # fmt: skip


def test_an_engagement_takes_a_quarter_of_the_upload_places_unless_told() -> None:
    assert IngestSettings(max_uploads=32).uploads_per_engagement == 8
    assert IngestSettings(max_uploads=7).uploads_per_engagement == 1  # 7 // 4
    assert IngestSettings(max_uploads=1).uploads_per_engagement == 1  # at least one
    assert IngestSettings(max_uploads=32, max_uploads_per_engagement=32).uploads_per_engagement == 32


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
def test_the_bytes_sent_are_limited_not_only_what_they_expand_to(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    limit = 1 << 20
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker", "ingest"),
        settings={"OUTRIDER_MAX_BODY_BYTES": str(limit)},
    ) as svc:  # fmt: skip
        ingest = svc["ingest"].url
        engagement, auth = open_engagement(svc["tracker"].url)
        # Empty gzip members, 20 bytes each, expand to nothing: 1.2 MB sent, 0 bytes expanded. Counted only expanded,
        # such a body could stream without end and hold its upload place all along.
        empty = gzip.compress(b"")
        assert len(empty) == 20
        refused = upload(ingest, engagement, empty * 60_000, {**auth, "Content-Encoding": "gzip"})
        assert refused.status_code == 413, refused.text
        assert f"more than {limit} bytes as sent" in refused.json()["detail"]
        assert refused.headers["connection"] == "close"  # the rest is not read either
        assert refused.headers["outrider-next-offset"] == "0"
        # Up to the limit on the wire is taken, empty members and all.
        lines = gzip.compress(LINE * 3)
        fits = upload(
            ingest, engagement, lines + empty * ((limit - len(lines)) // 20), {**auth, "Content-Encoding": "gzip"}
        )
        assert (fits.status_code, fits.json()["lines"]) == (202, 3), fits.text
        metrics = httpx.get(f"{ingest}/metrics").text
        assert 'outrider_ingest_requests_rejected_total{reason="body_too_large"} 1.0' in metrics


def stalled_upload(
    ingest: str, engagement: str, auth: dict[str, str], *, every: float | None = None
) -> tuple[int, dict[str, str], dict, float]:
    """Send the headers and one chunk of one line, then nothing (or, `every` given, another line every `every`
    seconds until answered, for 15 s at most); (status, headers, JSON body, seconds) of the answer, read to the
    close."""
    url = urlsplit(ingest)
    assert url.hostname is not None
    assert url.port is not None
    head = (f"POST /v1/engagements/{engagement}/logs?source=host&file_id=f HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: {auth['Authorization']}\r\nTransfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    chunk = f"{len(LINE):x}\r\n".encode() + LINE + b"\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        sent = time.monotonic()
        sock.sendall(head.encode() + chunk)
        answer = b""
        while every is not None and time.monotonic() < sent + 15 and not select.select([sock], [], [], every)[0]:
            sock.sendall(chunk)
        while data := sock.recv(65536):  # the server closes: the rest of the body is never read
            answer += data
    took = time.monotonic() - sent
    head_part, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head_part.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(payload), took


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
def test_a_body_that_stops_coming_is_answered_408_and_frees_its_place(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker", "ingest"),
        settings={"OUTRIDER_MAX_UPLOADS": "1", "OUTRIDER_BODY_IDLE_TIMEOUT_S": "1"},
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        mine, auth = open_engagement(tracker, "mine")
        theirs, their_auth = open_engagement(tracker, "theirs")
        status, headers, answer, took = stalled_upload(ingest, mine, auth)
        assert (status, headers["connection"]) == (408, "close"), answer
        assert 1 <= took < 10
        assert "no body bytes for 1 s" in answer["detail"]
        assert headers["outrider-next-offset"] == "0"  # the line was not taken: the shipper resends it
        # The only upload place is free again, for another engagement and for this one.
        assert upload(ingest, theirs, LINE, their_auth).status_code == 202
        assert upload(ingest, mine, LINE, auth).status_code == 202
        metrics = httpx.get(f"{ingest}/metrics").text
        assert 'outrider_ingest_requests_rejected_total{reason="body_idle"} 1.0' in metrics
        assert "outrider_ingest_uploads_in_progress 0.0" in metrics


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
def test_a_body_that_trickles_in_is_answered_408_at_its_deadline_and_frees_its_place(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    """A line every 0.3 s never trips the idle timeout: without a deadline for the whole body, a client could hold an
    upload place for as long as it liked."""
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker", "ingest"),
        settings={"OUTRIDER_MAX_UPLOADS": "1", "OUTRIDER_BODY_IDLE_TIMEOUT_S": "30", "OUTRIDER_BODY_TIMEOUT_S": "2"},
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        mine, auth = open_engagement(tracker, "mine")
        status, headers, answer, took = stalled_upload(ingest, mine, auth, every=0.3)
        assert (status, headers["connection"]) == (408, "close"), answer
        assert 2 <= took < 10
        assert "body not sent within 2 s" in answer["detail"]
        assert int(headers["outrider-next-offset"]) % len(LINE) == 0  # whole lines taken, the rest to send again
        assert upload(ingest, mine, LINE, auth).status_code == 202  # the only place is free again
        metrics = httpx.get(f"{ingest}/metrics").text
        assert 'outrider_ingest_requests_rejected_total{reason="body_slow"} 1.0' in metrics
        assert "outrider_ingest_uploads_in_progress 0.0" in metrics


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
def test_one_engagement_cannot_take_every_upload_place(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker", "ingest"),
        settings={"OUTRIDER_MAX_UPLOADS": "4"},  # a quarter each: one
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        mine, auth = open_engagement(tracker, "mine")
        theirs, their_auth = open_engagement(tracker, "theirs")
        release = threading.Event()

        def slow_body() -> Iterator[bytes]:
            yield LINE
            release.wait(30)
            yield LINE

        with ThreadPoolExecutor(1) as background:
            first = background.submit(upload, ingest, mine, slow_body(), auth)
            try:
                deadline = time.monotonic() + 20
                while "outrider_ingest_uploads_in_progress 1.0" not in httpx.get(f"{ingest}/metrics").text:
                    assert time.monotonic() < deadline, "the first upload never took its place"
                    time.sleep(0.05)
                busy = upload(ingest, mine, LINE, auth)  # three places are free, but not for this engagement
                assert (busy.status_code, busy.headers.get("retry-after")) == (503, "5"), busy.text
                assert "1 upload of this engagement at once" in busy.json()["detail"]
                assert upload(ingest, theirs, LINE, their_auth).status_code == 202
            finally:
                release.set()
            assert (first.result().status_code, first.result().json()["lines"]) == (202, 2), first.result().text
        assert upload(ingest, mine, LINE, auth).status_code == 202  # its place is free again
        metrics = httpx.get(f"{ingest}/metrics").text
        assert 'outrider_ingest_requests_rejected_total{reason="engagement_busy"} 1.0' in metrics
