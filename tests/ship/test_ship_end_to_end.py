"""`outrider ship` against the real ingest, Kafka, analyzer and tracker: every line counted exactly once."""

import gzip
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from outrider.devstack import Kafka
from tests.ship.stub import read_body
from tests.stack import as_admin, open_engagement, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
OUTRIDER = str(Path(sys.executable).parent / "outrider")


def lines(controller: str, n: int) -> bytes:
    return b"".join(
        b'{"controller":"%s","action":"show","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:%02dZ"}\n'
        % (controller.encode(), i % 60)
        for i in range(n)
    )


class FlakyProxy:
    """Answers the first `failures` uploads with 503 + Retry-After, then forwards to the real ingest.

    With `drop_after_forward`, the first upload reaches ingest (and Kafka) but its answer is lost: the connection
    closes without a reply, as when a load balancer or the network drops it.
    """

    def __init__(self, target: str, failures: int, drop_after_forward: int = 0) -> None:
        self.refused = 0
        self.dropped = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = read_body(self)
                if proxy.refused < failures:
                    proxy.refused += 1
                    self.send_response(503)
                    self.send_header("Retry-After", "0.2")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "transfer-encoding")
                }
                answer = httpx.post(target + self.path, content=body, headers=headers, timeout=30)
                if proxy.dropped < drop_after_forward:
                    proxy.dropped += 1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_tailing_rotation_truncation_retries_and_bundles(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"),
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        engagement, auth = open_engagement(tracker)
        token = auth["Authorization"].removeprefix("Bearer ")
        rails = tmp_path / "gitlab-rails"
        rails.mkdir()
        log, state = rails / "production_json.log", tmp_path / "ship-state.json"

        def ship(*args: str, url: str = ingest, tok: str = token) -> subprocess.CompletedProcess[str]:
            env = {**os.environ, "OUTRIDER_SHIP_TOKEN": tok, "COLUMNS": "200"}
            return subprocess.run([OUTRIDER, "ship", "--engagement", engagement, "--url", url, *args],
                                  capture_output=True, text=True, env=env, timeout=120)  # fmt: skip

        def counts(total: int) -> dict[str, int]:
            deadline = time.monotonic() + 60
            while (body := as_admin.get(f"{tracker}/v1/engagements/{engagement}/stats").json())["total_count"] < total:
                assert time.monotonic() < deadline, f"stuck at {body['total_count']} of {total}"
                time.sleep(0.2)
            time.sleep(1)  # a double count would show up now
            return {
                k["key"]: k["count"]
                for k in as_admin.get(f"{tracker}/v1/engagements/{engagement}/stats").json()["keys"]
            }

        log.write_bytes(lines("First", 5))
        first = ship("tail", str(log), "--once", "--state", str(state))
        assert first.returncode == 0, first.stderr
        assert counts(5) == {"First#show": 5}

        with log.open("ab") as f:  # appended, then rotated by rename, then a new file
            f.write(lines("Second", 3))
        os.rename(log, rails / "production_json.log.1")
        log.write_bytes(lines("Third", 4))
        assert ship("tail", str(log), "--once", "--state", str(state)).returncode == 0
        # The old inode was not open in this new process: its 3 new lines are found through the rotated name,
        # which keeps its identity (device, inode, first line) and so its checkpoint.
        assert ship("tail", str(rails / "production_json.log.1"), "--once", "--state", str(state)).returncode == 0
        assert counts(12) == {"First#show": 5, "Second#show": 3, "Third#show": 4}

        log.write_bytes(lines("Fourth", 2))  # copytruncate: same inode, shorter
        proxy = FlakyProxy(ingest, failures=2)
        try:
            flaky = ship("tail", str(log), "--once", "--state", str(state), url=proxy.url)
        finally:
            proxy.close()
        assert flaky.returncode == 0, flaky.stderr
        assert proxy.refused == 2
        assert counts(14) == {"First#show": 5, "Second#show": 3, "Third#show": 4, "Fourth#show": 2}

        refused = ship("tail", str(log), "--once", "--state", str(tmp_path / "other.json"), tok="otr_wrong")
        assert refused.returncode == 1
        assert "refused the token (401)" in refused.stderr

        bundle = tmp_path / "support-bundle.tar.gz"
        gitaly = (
            b'{"grpc.method":"FindCommit","grpc.code":"OK","grpc.time_ms":3.5,'
            b'"msg":"finished unary call with code OK","time":"2024-05-01T10:00:00Z"}\n' * 6
        )
        contents = {
            "var/log/gitlab/gitaly/current": gitaly,
            "var/log/gitlab/gitlab-rails/production_json.log.2.gz": gzip.compress(lines("Fifth", 7)),
            "README.txt": b"not a log\n",
        }
        with tarfile.open(bundle, "w:gz") as tar:
            for name, data in contents.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        uploaded = ship("bundle", str(bundle))
        assert uploaded.returncode == 0, uploaded.stderr
        assert "shipped 2 files" in uploaded.stderr
        again = ship("bundle", str(bundle))  # the same bundle twice: chunk ids repeat, nothing doubles
        assert again.returncode == 0
        final = counts(27)
    assert final == {"First#show": 5, "Second#show": 3, "Third#show": 4, "Fourth#show": 2, "Fifth#show": 7,
                     "FindCommit": 6}  # fmt: skip


def test_a_lost_answer_and_a_kafka_outage_mid_upload_lose_and_double_nothing(
    database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    kafka = Kafka(tmp_path / "kafka")  # this test's own broker, so it can be stopped
    kafka.start()
    try:
        with running_services(
            kafka=kafka.bootstrap_servers, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
            names=("tracker", "ingest", "analyzer"), settings={"OUTRIDER_PRODUCE_TIMEOUT_S": "2"},
        ) as svc:  # fmt: skip
            tracker, ingest = svc["tracker"].url, svc["ingest"].url
            engagement, auth = open_engagement(tracker)
            env = {**os.environ, "OUTRIDER_SHIP_TOKEN": auth["Authorization"].removeprefix("Bearer ")}
            log = tmp_path / "production_json.log"
            log.write_bytes(lines("Dropped", 4))
            proxy = FlakyProxy(ingest, failures=0, drop_after_forward=1)
            try:
                lost = subprocess.run(
                    [OUTRIDER, "ship", "--engagement", engagement, "--url", proxy.url, "tail", str(log), "--once",
                     "--state", str(tmp_path / "s.json")], env=env, capture_output=True, text=True, timeout=120,
                )  # fmt: skip
            finally:
                proxy.close()
            assert lost.returncode == 0, lost.stderr
            assert proxy.dropped == 1  # the first answer never came back: the same bytes were sent again

            with log.open("ab") as f:
                f.write(lines("Outage", 6))
            kafka.stop()
            shipper = subprocess.Popen(
                [OUTRIDER, "ship", "--engagement", engagement, "--url", ingest, "tail", str(log), "--once",
                 "--state", str(tmp_path / "s.json")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(4)  # the shipper meets 503s and backs off while the broker is away
            assert shipper.poll() is None
            kafka.start()
            _, err = shipper.communicate(timeout=120)
            assert shipper.returncode == 0, err.decode()

            deadline = time.monotonic() + 60
            while (body := as_admin.get(f"{tracker}/v1/engagements/{engagement}/stats").json())["total_count"] < 10:
                assert time.monotonic() < deadline, body
                time.sleep(0.2)
            time.sleep(1)
            final = {
                k["key"]: k["count"]
                for k in as_admin.get(f"{tracker}/v1/engagements/{engagement}/stats").json()["keys"]
            }
    finally:
        kafka.stop()
    assert final == {"Dropped#show": 4, "Outage#show": 6}


def test_a_follower_of_two_files_through_rename_rotation_and_copytruncate_ships_every_line_once(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"),
    ) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        engagement, auth = open_engagement(tracker)
        renamed, truncated = tmp_path / "rails-1" / "production_json.log", tmp_path / "rails-2" / "production_json.log"
        for log in (renamed, truncated):
            log.parent.mkdir()
        renamed.write_bytes(lines("RenamedBefore", 5))
        truncated.write_bytes(lines("TruncatedBefore", 4))

        def counts(total: int) -> dict[str, int]:
            deadline = time.monotonic() + 30
            while (body := as_admin.get(f"{tracker}/v1/engagements/{engagement}/stats").json())["total_count"] < total:
                assert follower.poll() is None, errors.read_text()
                assert time.monotonic() < deadline, f"stuck at {body['total_count']} of {total}: {body['keys']}"
                time.sleep(0.2)
            return {k["key"]: k["count"] for k in body["keys"]}

        env = {**os.environ, "OUTRIDER_SHIP_TOKEN": auth["Authorization"].removeprefix("Bearer ")}
        errors = tmp_path / "ship.err"
        with errors.open("wb") as err:
            follower = subprocess.Popen(
                [OUTRIDER, "ship", "--engagement", engagement, "--url", svc["ingest"].url, "tail",
                 str(tmp_path / "rails-*" / "production_json.log"), "--state", str(tmp_path / "s.json"),
                 "--interval", "0.2", "--rotation-grace", "1"],
                env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        try:
            assert counts(9) == {"RenamedBefore#show": 5, "TruncatedBefore#show": 4}
            # Both rotations happen between two of the follower's looks, with lines it has not read yet in the old
            # files: a stopped process makes that certain.
            follower.send_signal(signal.SIGSTOP)
            with renamed.open("ab") as f:
                f.write(lines("RenamedUnread", 3))
            os.rename(renamed, renamed.with_name("production_json.log.1"))  # logrotate's create
            with renamed.with_name("production_json.log.1").open("ab") as f:  # the application writes on, then reopens
                f.write(lines("RenamedLate", 2))
            renamed.write_bytes(lines("RenamedNew", 4))
            with truncated.open("ab") as f:
                f.write(lines("TruncatedUnread", 3))
            shutil.copyfile(truncated, truncated.with_name("production_json.log.1"))  # logrotate's copytruncate
            with truncated.open("r+b") as f:
                f.truncate(0)
                f.write(lines("TruncatedNew", 2))
            follower.send_signal(signal.SIGCONT)
            assert counts(23)["TruncatedNew#show"] == 2  # the old files finished, the new ones begun
            with renamed.open("ab") as f, truncated.open("ab") as g:  # appended while it follows the new files
                f.write(lines("RenamedAfter", 6))
                g.write(lines("TruncatedAfter", 7))
            counts(36)
            time.sleep(1)  # a double count would show up now
            final = counts(36)
        finally:
            follower.send_signal(signal.SIGCONT)
            follower.terminate()
            follower.wait(timeout=10)
    assert final == {
        "RenamedBefore#show": 5, "RenamedUnread#show": 3, "RenamedLate#show": 2, "RenamedNew#show": 4,
        "RenamedAfter#show": 6, "TruncatedBefore#show": 4, "TruncatedUnread#show": 3, "TruncatedNew#show": 2,
        "TruncatedAfter#show": 7,
    }  # fmt: skip
