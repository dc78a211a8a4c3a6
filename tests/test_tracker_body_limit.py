"""Request bodies over the tracker's limit (1 MiB by default) are refused with 413 without being read to the end:
when Content-Length announces too much, and when a chunked body runs past the limit while it streams in (whatever
Content-Length comes with it)."""

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.stack import ADMIN_TOKEN, as_admin

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
LIMIT = 1 << 20
ENGAGEMENT = json.dumps({"name": "big", "customer": "ACME"}).encode()


def chunk(data: bytes) -> bytes:
    """`data` framed as one HTTP/1.1 chunk."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def unfinished_post(tracker: str, framing: str, body: bytes = b"") -> tuple[int, str, dict[str, str]]:
    """POST an engagement with the header `framing` and `body`, and never send the rest: only a server that answers
    before the body ends answers at all. (status, Connection header, JSON body) of the answer, read to the close."""
    url = urlsplit(tracker)
    assert url.hostname is not None
    assert url.port is not None
    head = (f"POST /v1/engagements HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n\r\n")  # fmt: skip
    with socket.create_connection((url.hostname, url.port), timeout=15) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while data := sock.recv(65536):  # the server closes: it reads no more of this request
            answer += data
    head_part, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head_part.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    return int(status_line.split()[1]), headers.get("connection", ""), json.loads(payload)


def test_a_body_over_the_limit_is_refused_without_reading_it(tracker: str) -> None:
    # Announced: 500 MB that never come. Refused on the header alone.
    status, connection, answer = unfinished_post(tracker, "Content-Length: 500000000")
    assert (status, connection) == (413, "close")
    assert answer == {"detail": f"request body is larger than the limit of {LIMIT} bytes"}
    assert unfinished_post(tracker, f"Content-Length: {LIMIT + 1}")[0] == 413

    # Streamed: one byte past the limit, then nothing more (no last chunk). Refused as soon as the limit is passed.
    status, connection, answer = unfinished_post(tracker, "Transfer-Encoding: chunked",
                                                 chunk(b" " * LIMIT) + chunk(b" "))  # fmt: skip
    assert (status, connection) == (413, "close")
    assert "limit of 1048576 bytes" in answer["detail"]
    # The same with a small Content-Length beside it: the server frames the body by Transfer-Encoding (RFC 9112
    # §6.1), so the length says nothing of it. Trusted, it let the whole body be read, before any token check.
    status, connection, answer = unfinished_post(tracker, "Transfer-Encoding: chunked\r\nContent-Length: 2",
                                                 chunk(b" " * LIMIT) + chunk(b" "))  # fmt: skip
    assert (status, connection) == (413, "close")
    assert "limit of 1048576 bytes" in answer["detail"]

    # Up to the limit, both ways, the body goes through (JSON allows the trailing spaces).
    exactly, json_type = ENGAGEMENT.ljust(LIMIT), {"Content-Type": "application/json"}
    assert as_admin.post(f"{tracker}/v1/engagements", content=exactly, headers=json_type).status_code == 201
    pieces = iter([exactly[i : i + 100_000] for i in range(0, LIMIT, 100_000)])  # an iterator is sent chunked
    streamed = as_admin.post(f"{tracker}/v1/engagements", content=pieces, headers=json_type)
    assert streamed.status_code == 201, streamed.text
    assert [e["name"] for e in as_admin.get(f"{tracker}/v1/engagements").json()] == ["big", "big"]
