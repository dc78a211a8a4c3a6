"""Ingest refuses what it must, with the right status, and still accepts gzip."""

import gzip
from pathlib import Path

import httpx
import pytest

from tests.stack import open_engagement, running_services

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
        settings={"OUTRIDER_MAX_BODY_BYTES": str(MAX_BODY), "OUTRIDER_MAX_LINE_BYTES": str(1 << 20)},
    ) as svc:
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        mine, auth = open_engagement(tracker, "mine")
        theirs, their_auth = open_engagement(tracker, "theirs")

        def upload(engagement: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
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
        # 1 GiB of empty lines compresses to ~1 MiB: the expansion limit, not the wire size, must refuse it.
        bomb = gzip.compress(b"\n" * (1 << 30), compresslevel=9)
        assert len(bomb) < 2 << 20
        refused = upload(mine, bomb, {**auth, "Content-Encoding": "gzip"})
        assert refused.status_code == 413
        assert "expands to more than" in refused.json()["detail"]
        assert (
            'outrider_ingest_requests_rejected_total{reason="body_too_large"} 1.0'
            in httpx.get(f"{ingest}/metrics").text
        )
