"""A local stand-in for ingest: answers queued statuses (503 + Retry-After, 401, ...) and then 202."""

import gzip
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ENGAGEMENT = "3f2b6c1e-8d4a-4f7e-9a51-0c6e2d9b7a10"  # an engagement id as ingest takes them (a UUID)


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, sent with a Content-Length or chunked (the shipper streams its gzip a MiB at a time)."""
    if "Content-Length" in handler.headers:
        return handler.rfile.read(int(handler.headers["Content-Length"]))
    assert handler.headers["Transfer-Encoding"] == "chunked"
    pieces = []
    while size := int(handler.rfile.readline().split(b";")[0], 16):
        pieces.append(handler.rfile.read(size))
        handler.rfile.readline()  # the CRLF after each chunk
    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers, then the blank line
        pass
    return b"".join(pieces)


class Ingest:
    """Answers POSTs with the queued (status, Retry-After) pairs, then 202; records each request's body, query and
    Authorization header. With `proxy_limit`, a body over that many bytes (as sent, gzipped) is answered 413 in HTML
    and not recorded, as nginx's client_max_body_size does in front of ingest."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, str | None]] = []
        self.answer_headers: dict[str, str] = {}  # sent with every answer but a 202
        self.proxy_limit: int | None = None
        self.proxy_refused = 0
        self.requests: list[tuple[float, str, bytes]] = []
        self.statuses: list[int] = []
        self.authorizations: list[str | None] = []
        self.reply: bytes | None = None  # the body of every answer, instead of the acknowledgement
        self.keep_bodies = True  # False: record b"" for each body (a test of the shipper's memory), count its bytes
        self.received = 0
        # Cleared: requests are taken (recorded) but not answered until it is set, as when the shipper dies meanwhile.
        self.answering = threading.Event()
        self.answering.set()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                sent = read_body(self)
                if stub.proxy_limit is not None and len(sent) > stub.proxy_limit:
                    stub.proxy_refused += 1
                    html = b"<html><center><h1>413 Request Entity Too Large</h1></center></html>"
                    self.send_response(413)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(html)))
                    self.end_headers()
                    self.wfile.write(html)
                    return
                body = gzip.decompress(sent)
                stub.received += len(body)
                stub.requests.append((time.monotonic(), self.path, body if stub.keep_bodies else b""))
                stub.authorizations.append(self.headers["Authorization"])
                stub.answering.wait()
                status, after = stub.answers.pop(0) if stub.answers else (202, None)
                reply = stub.reply or b'{"next_offset": %d}' % (
                    int(self.path.split("offset=")[1].split("&")[0]) + len(body)
                )
                stub.statuses.append(status)
                self.send_response(status)
                if after is not None:
                    self.send_header("Retry-After", after)
                if status != 202:
                    for name, value in stub.answer_headers.items():
                        self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                try:
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:  # the shipper is gone (killed while this request was held)
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.start()

    def close(self) -> None:
        self.answering.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


OUTRIDER = str(Path(sys.executable).parent / "outrider")


def stopped_in_a_retry_wait(ingest: Ingest, args: list[str], stop: int) -> tuple[float, int, str]:
    """Run `outrider ship ARGS` until ingest has answered it 503 once (queue that answer first), send `stop` while it
    waits to retry; (seconds it took to end after the signal, its exit code, its stderr)."""
    env = {**os.environ, "OUTRIDER_SHIP_TOKEN": "otr_secret", "COLUMNS": "200"}
    shipper = subprocess.Popen([OUTRIDER, "ship", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while ingest.statuses != [503]:
            assert shipper.poll() is None
            assert time.monotonic() < deadline, ingest.statuses
            time.sleep(0.05)
        time.sleep(0.3)  # into the wait
        shipper.send_signal(stop)
        asked = time.monotonic()
        _, err = shipper.communicate(timeout=30)
    finally:
        shipper.kill()
    return time.monotonic() - asked, shipper.returncode, err.decode()
