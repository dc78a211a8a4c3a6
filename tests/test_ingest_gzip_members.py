"""A gzip body of several members is expanded whole; bytes after the last member are refused, never skipped."""

import gzip
import time
import zlib
from pathlib import Path

import httpx
import pytest

from tests.stack import as_admin, open_engagement, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
MAX_BODY = 8 << 20
LINE = b'{"controller":"A","action":"b","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:00Z"}\n'


def test_every_gzip_member_is_counted_and_trailing_bytes_are_refused(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"),
        # Small records, so a refused body has produced some before its end is read.
        settings={"OUTRIDER_MAX_BODY_BYTES": str(MAX_BODY), "OUTRIDER_CHUNK_BYTES": "4096"},
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        engagement, auth = open_engagement(tracker)

        def upload(file_id: str, body: bytes | list[bytes], coding: str = "gzip") -> httpx.Response:
            return httpx.post(
                f"{ingest}/v1/engagements/{engagement}/logs",
                params={"source": "host", "file_id": file_id, "log_type": "production_json"},
                content=iter(body) if isinstance(body, list) else body,
                headers={**auth, "Content-Encoding": coding},
                timeout=30,
            )

        first, second = LINE * 200, LINE * 300
        # `cat a.gz b.gz`; bgzip and pigz -i write members too, bgzip ending with an empty one.
        members = gzip.compress(first) + gzip.compress(second) + gzip.compress(b"")
        whole = upload("cat", members)
        assert (whole.status_code, whole.json()["lines"], whole.json()["bytes"]) == (202, 500, 500 * len(LINE)), (
            whole.text
        )
        # Streamed in pieces that split the second member's header and the third member from the second.
        boundary = len(gzip.compress(first))
        pieces = [members[: boundary + 5], members[boundary + 5 : -10], members[-10:]]
        streamed = upload("streamed", pieces)
        assert (streamed.status_code, streamed.json()["lines"]) == (202, 500), streamed.text

        trailing = upload("trailing", gzip.compress(first) + b"trailing garbage")
        assert trailing.status_code == 400, trailing.text
        assert f"bytes {boundary}+ of the request body, after gzip member 1, are not a gzip member" in trailing.text
        # These refused bodies start with the same lines, so the records produced before the refusal are the same.
        cut = upload("trailing", gzip.compress(first) + gzip.compress(second)[:12])
        assert cut.status_code == 400, cut.text
        assert "truncated gzip stream in gzip member 2" in cut.json()["detail"]
        # RFC 1950: a deflate body is one zlib stream; more after it is not a second one.
        after_zlib = upload("trailing", zlib.compress(first) + zlib.compress(second), "deflate")
        assert after_zlib.status_code == 400, after_zlib.text
        assert "follow the end of its zlib stream" in after_zlib.json()["detail"]
        # The shipper resends the same range once the file is fixed: records of the refused bodies count once.
        fixed = upload("trailing", gzip.compress(first))
        assert (fixed.status_code, fixed.json()["lines"]) == (202, 200), fixed.text

        stats_url = f"{tracker}/v1/engagements/{engagement}/stats"
        want = 500 + 500 + 200
        deadline = time.monotonic() + 60
        while as_admin.get(stats_url).json()["total_count"] < want:
            assert time.monotonic() < deadline, f"counted {as_admin.get(stats_url).json()['total_count']} of {want}"
            time.sleep(0.2)
        time.sleep(1)  # a record of a refused body counted twice would show up now
        assert as_admin.get(stats_url).json()["total_count"] == want

        # The expansion limit holds for all members together, not for each one.
        bomb, bomb_auth = open_engagement(tracker, "bomb")
        half = gzip.compress(b"\n" * (5 << 20), compresslevel=9)
        refused = httpx.post(
            f"{ingest}/v1/engagements/{bomb}/logs", params={"source": "host", "file_id": "bomb"},
            content=half + half, headers={**bomb_auth, "Content-Encoding": "gzip"}, timeout=30,
        )  # fmt: skip
        assert refused.status_code == 413, refused.text
        assert f"expands to more than {MAX_BODY} bytes" in refused.json()["detail"]
