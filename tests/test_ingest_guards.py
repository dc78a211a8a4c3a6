"""Ingest refuses what it must, with the right status, and still accepts gzip."""

import gzip
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import logparse
from tests.stack import as_admin, open_engagement, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
MAX_BODY = 8 << 20
LINE = b'{"controller":"A","action":"b","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:00Z"}\n'


def test_tokens_limits_and_encodings(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    names = ("tracker", "ingest")
    with running_services(
        kafka=kafka_bootstrap,
        dsn=database_dsn,
        topic_prefix=topic_prefix,
        logs=tmp_path,
        names=names,
        settings={
            "OUTRIDER_MAX_BODY_BYTES": str(MAX_BODY), "OUTRIDER_MAX_LINE_BYTES": str(1 << 20),
            "OUTRIDER_MAX_UPLOADS": "1",
        },
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        mine, auth = open_engagement(tracker, "mine")
        theirs, their_auth = open_engagement(tracker, "theirs")

        def upload(engagement: str, body: bytes | Iterator[bytes], headers: dict[str, str]) -> httpx.Response:
            return httpx.post(
                f"{ingest}/v1/engagements/{engagement}/logs",
                params={"source": "host", "file_id": "f"},
                content=body,
                headers=headers,
                timeout=30,
            )

        no_token = upload(mine, LINE, {})
        assert (no_token.status_code, no_token.headers["www-authenticate"]) == (401, "Bearer")
        assert upload(mine, LINE, {"Authorization": "Bearer otr_not-a-real-token"}).status_code == 401
        wrong = upload(mine, LINE, their_auth)
        assert wrong.status_code == 403
        assert "another engagement" in wrong.json()["detail"]

        gz = upload(mine, gzip.compress(LINE * 3), {**auth, "Content-Encoding": "gzip"})
        assert (gz.status_code, gz.json()["lines"], gz.json()["bytes"]) == (202, 3, 3 * len(LINE))
        assert upload(theirs, b"\x1f\x8b\x08garbage", {**their_auth, "Content-Encoding": "gzip"}).status_code == 400

        too_long_line = upload(mine, LINE + b"x" * ((1 << 20) + 1) + b"\n", auth)
        assert too_long_line.status_code == 413
        assert "longer than" in too_long_line.json()["detail"]
        # How far it took the lines, for the shipper to go on from there (the line before the long one is taken).
        assert too_long_line.headers["outrider-next-offset"] == str(len(LINE))
        # 1 GiB of empty lines compresses to ~1 MiB: the expansion limit, not the wire size, must refuse it.
        bomb = gzip.compress(b"\n" * (1 << 30), compresslevel=9)
        assert len(bomb) < 2 << 20
        refused = upload(mine, bomb, {**auth, "Content-Encoding": "gzip"})
        assert refused.status_code == 413
        assert "expands to more than" in refused.json()["detail"]
        assert int(refused.headers["outrider-next-offset"]) > 0
        assert (
            'outrider_ingest_requests_rejected_total{reason="body_too_large"} 1.0'
            in httpx.get(f"{ingest}/metrics").text
        )

        # One upload at a time here: while one is still sending its body, the next is told to come back.
        release = threading.Event()

        def slow_body() -> Iterator[bytes]:
            yield LINE
            release.wait(30)
            yield LINE

        with ThreadPoolExecutor(1) as background:
            first = background.submit(upload, mine, slow_body(), auth)
            try:
                taking = "outrider_ingest_uploads_in_progress 1.0"
                deadline = time.monotonic() + 20
                while taking not in httpx.get(f"{ingest}/metrics").text and time.monotonic() < deadline:
                    time.sleep(0.05)  # until the first upload holds the place
                busy = upload(theirs, LINE, their_auth)
                assert (busy.status_code, busy.headers.get("retry-after")) == (503, "5"), busy.text
                assert "uploads at once" in busy.json()["detail"]
                assert upload(theirs, LINE, {}).status_code == 401  # the token is checked first, place or not
            finally:
                release.set()
            assert (first.result().status_code, first.result().json()["lines"]) == (202, 2), first.result().text
        assert upload(theirs, LINE, their_auth).status_code == 202  # the place is free again
        assert 'outrider_ingest_requests_rejected_total{reason="busy"}' in httpx.get(f"{ingest}/metrics").text


def test_content_codings_are_expanded_or_refused_never_stored_as_lines(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker", "ingest")
    ) as svc:
        ingest = svc["ingest"].url
        engagement, auth = open_engagement(svc["tracker"].url)

        def upload(body: bytes, coding: str | None) -> httpx.Response:
            return httpx.post(
                f"{ingest}/v1/engagements/{engagement}/logs",
                params={"source": "host", "file_id": "f"},
                content=body,
                headers={**auth, **({"Content-Encoding": coding} if coding else {})},
                timeout=30,
            )

        lines = LINE * 3
        # RFC 9110 §8.4.1: coding names are case-insensitive and x-gzip is gzip; deflate is the zlib format.
        for coding, body in [
            ("GZIP", gzip.compress(lines)),
            ("x-gzip", gzip.compress(lines)),
            ("X-GZip", gzip.compress(lines)),
            ("deflate", zlib.compress(lines)),
            ("Deflate", zlib.compress(lines)),
            ("identity", lines),
            ("identity, gzip", gzip.compress(lines)),
            (None, lines),
        ]:
            accepted = upload(body, coding)
            got = (accepted.status_code, accepted.json()["lines"], accepted.json()["bytes"])
            assert got == (202, 3, len(lines)), (coding, accepted.text)
        for coding, body in [
            ("zstd", logparse.compress_chunk(lines)),
            ("br", b"\x1b\x00\x00garbage"),
            ("compress", b"\x1f\x9dgarbage"),
            ("gzip, gzip", gzip.compress(gzip.compress(lines))),
        ]:
            refused = upload(body, coding)
            assert refused.status_code == 415, (coding, refused.text)
            assert refused.headers["accept-encoding"] == "gzip, x-gzip, deflate, identity"
            assert repr(coding) in refused.json()["detail"]
            assert "accepted: gzip, x-gzip, deflate, identity" in refused.json()["detail"]
        assert upload(b"not zlib", "deflate").status_code == 400
        # A form upload (curl -F) would store its boundaries and part headers as lines; curl --data-binary's
        # default Content-Type (a urlencoded form, which the body is not) is what most uploads carry, so it is read.
        form = httpx.post(
            f"{ingest}/v1/engagements/{engagement}/logs", params={"source": "host", "file_id": "form"},
            files={"file": ("production_json.log", lines)}, headers=auth, timeout=30,
        )  # fmt: skip
        assert form.status_code == 415, form.text
        assert "curl --data-binary" in form.json()["detail"]
        urlencoded = httpx.post(
            f"{ingest}/v1/engagements/{engagement}/logs", params={"source": "host", "file_id": "plain"},
            content=lines, headers={**auth, "Content-Type": "application/x-www-form-urlencoded"}, timeout=30,
        )  # fmt: skip
        assert (urlencoded.status_code, urlencoded.json()["lines"]) == (202, 3)
        metrics = httpx.get(f"{ingest}/metrics").text
        assert 'outrider_ingest_requests_rejected_total{reason="unsupported_encoding"} 4.0' in metrics
        assert 'outrider_ingest_requests_rejected_total{reason="bad_deflate"} 1.0' in metrics
        assert 'outrider_ingest_requests_rejected_total{reason="form_upload"} 1.0' in metrics
        # The accepted codings are documented where clients read the API.
        operation = httpx.get(f"{ingest}/openapi.json").json()["paths"]["/v1/engagements/{engagement_id}/logs"]["post"]
        assert "`x-gzip`" in operation["description"]
        assert "gzip, x-gzip, deflate, identity" in operation["responses"]["415"]["description"]


def test_names_that_differ_only_around_a_pipe_are_counted_apart(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"),
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        engagement, auth = open_engagement(tracker)

        def upload(source: str, file_id: str) -> httpx.Response:
            return httpx.post(
                f"{ingest}/v1/engagements/{engagement}/logs",
                params={"source": source, "file_id": file_id, "log_type": "production_json"},
                content=LINE * 2,
                headers=auth,
                timeout=30,
            )

        # Both were chunk `host|x|y|0`: the analyzer counted the first and dropped the second as a duplicate.
        assert upload("host|x", "y").status_code == 202
        assert upload("host", "x|y").status_code == 202
        assert upload("host", "x|y").status_code == 202  # a resend of the same range still dedupes
        # Long names make long chunk ids, which PostgreSQL's index must hold: these are taken and counted ...
        assert upload("h" * 200, "f" * 500).status_code == 202  # 702 bytes of chunk id
        assert upload("é" * 100, "a|" * 68).status_code == 202  # percent-encoded for the `|`: 882 bytes
        # ... these would be a 3,310-byte id (each byte of a name three once encoded), past the index's 2,704 bytes:
        # taken, they would be dead-lettered by the analyzer, and no replay could ever count them.
        too_long = upload("日" * 200, "|" * 500)
        assert too_long.status_code == 422, too_long.text
        assert "chunk id of 3310 bytes" in too_long.json()["detail"]
        stats_url = f"{tracker}/v1/engagements/{engagement}/stats"
        deadline = time.monotonic() + 30
        while as_admin.get(stats_url).json()["total_count"] < 8:
            assert time.monotonic() < deadline, f"counted {as_admin.get(stats_url).json()['total_count']} of 8 lines"
            time.sleep(0.2)
        time.sleep(1)  # the resend, counted again, would show up now
        assert as_admin.get(stats_url).json()["total_count"] == 8
        # Control characters name no host or file, and a NUL cannot be stored: refused before Kafka sees them.
        for source, file_id in [("host\x00", "f"), ("host", "f\nx"), ("host\x7f", "f")]:
            refused = upload(source, file_id)
            assert refused.status_code == 422, (source, file_id, refused.text)
            assert "control characters" in refused.text
