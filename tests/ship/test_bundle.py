"""`outrider ship bundle` against the local ingest stand-in: file ids that repeat only for the same file."""

import gzip
import io
import os
import signal
import subprocess
import tarfile
import tracemalloc
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from typer.testing import CliRunner

from outrider.cli import app
from outrider.ship.bundle import pieces
from tests.ship.stub import ENGAGEMENT, OUTRIDER, Ingest, stopped_in_a_retry_wait

runner = CliRunner()
MEMBER = "var/log/gitlab/gitlab-rails/production_json.log.2.gz"


def day(date: str) -> bytes:
    """A day's rotated Rails log: the same shape and length every day, other times."""
    return b"".join(b'{"method":"GET","status":200,"time":"%s T10:00:%02dZ"}\n' % (date.encode(), i) for i in range(60))


def write_bundle(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def upload(ingest: Ingest, bundle: Path) -> list[tuple[str, int, bytes]]:
    """(file id, offset, body) of each request the upload of `bundle` made."""
    before = len(ingest.requests)
    result = runner.invoke(
        app, ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, "bundle", str(bundle)],
        env={"OUTRIDER_SHIP_TOKEN": "otr_secret"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = []
    for _, path, body in ingest.requests[before:]:
        query = parse_qs(urlsplit(path).query)
        sent.append((query["file_id"][0], int(query["offset"][0]), body))
    return sent


def test_the_same_bundle_twice_repeats_its_ids_and_a_new_file_under_a_reused_name_gets_its_own(
    ingest: Ingest, tmp_path: Path
) -> None:
    monday, tuesday = gzip.compress(day("2024-05-06"), mtime=0), gzip.compress(day("2024-05-07"), mtime=0)
    assert len(monday) == len(tuesday)  # logrotate's name and even the size repeat: only the content differs
    write_bundle(tmp_path / "monday" / "gitlabsos.tar.gz", {MEMBER: monday})
    write_bundle(tmp_path / "tuesday" / "gitlabsos.tar.gz", {MEMBER: tuesday})

    first = upload(ingest, tmp_path / "monday" / "gitlabsos.tar.gz")
    again = upload(ingest, tmp_path / "monday" / "gitlabsos.tar.gz")
    later = upload(ingest, tmp_path / "tuesday" / "gitlabsos.tar.gz")

    assert [(offset, body) for _, offset, body in first] == [(0, day("2024-05-06"))]
    assert again == first  # chunk ids repeat: the analyzer counts the resend once
    assert [(offset, body) for _, offset, body in later] == [(0, day("2024-05-07"))]
    assert later[0][0] != first[0][0]  # else the analyzer would drop Tuesday's lines as Monday's duplicates
    assert first[0][0].startswith(f"bundle:gitlabsos.tar.gz:{MEMBER}:")


def test_a_bundle_is_read_one_piece_at_a_time_not_held_in_memory(ingest: Ingest, tmp_path: Path) -> None:
    line = b'{"method":"GET","path":"/api/v4/jobs/request","status":204,"duration_s":0.01}\n'
    data = line * ((32 << 20) // len(line))  # 32 MiB of logs, a few hundred KiB compressed
    write_bundle(tmp_path / "gitlabsos.tar.gz", {MEMBER.removesuffix(".2.gz"): data})
    ingest.keep_bodies = False
    tracemalloc.start()
    try:
        upload(ingest, tmp_path / "gitlabsos.tar.gz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ingest.received == len(data)
    assert peak < len(data) * 3 // 4, f"{peak / (1 << 20):.0f} MiB"  # holding the logs alone would take 32 MiB


def test_a_bundle_directory_never_follows_a_symbolic_link_out_of_it(ingest: Ingest, tmp_path: Path) -> None:
    secret = tmp_path / "home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "current").write_bytes(b"-----BEGIN OTHER SECRET-----\n")
    bundle = tmp_path / "bundle"
    (bundle / "gitlab-rails").mkdir(parents=True)
    (bundle / "gitaly").mkdir()
    rails = bundle / "gitlab-rails" / "production_json.log"
    rails.write_bytes(day("2024-05-06"))
    (bundle / "gitaly" / "current").symlink_to(secret)
    (bundle / "sidekiq").symlink_to(elsewhere, target_is_directory=True)
    (bundle / "gitlab-rails" / "api_json.log").symlink_to(rails)  # inside, yet not followed either: the same rule

    result = runner.invoke(
        app, ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, "bundle", str(bundle)],
        env={"OUTRIDER_SHIP_TOKEN": "otr_secret", "COLUMNS": "400"},
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert [body for _, _, body in ingest.requests] == [day("2024-05-06")]
    for link in ("gitaly/current", "sidekiq", "gitlab-rails/api_json.log"):
        assert f"{bundle / link}: a symbolic link, not followed" in result.output
    assert "shipped 1 files" in result.output


class Endless(io.RawIOBase):
    """A member that never ends a line, as a gzip bomb of one byte repeated; refuses to be read past `limit`."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        assert self.left > 0, "read on and on: the line is being held whole"
        size = min(len(buffer), self.left)
        buffer[:size] = b"x" * size
        self.left -= size
        return size


def test_a_line_longer_than_the_longest_is_sent_cut_not_held_whole() -> None:
    first = next(pieces(Endless(limit=1000), max_bytes=16, longest=64))
    assert first == (0, b"x" * 64)
    assert list(pieces(io.BytesIO(b"x" * 100 + b"\n{}\n"), max_bytes=16, longest=64)) == [
        (0, b"x" * 64), (64, b"x" * 36 + b"\n"), (101, b"{}\n"),
    ]  # fmt: skip
    assert list(pieces(io.BytesIO(b"x" * 40 + b"\n"), max_bytes=16, longest=64)) == [(0, b"x" * 40 + b"\n")]


def test_a_stopped_bundle_upload_says_how_far_it_got_and_a_second_run_finishes_it(
    ingest: Ingest, tmp_path: Path
) -> None:
    """SIGTERM in a retry wait ends the upload at once (not after the minute ingest asked for), with how far it got
    and exit 1; run again, it sends everything and nothing counts twice (chunk ids repeat)."""
    bundle = tmp_path / "gitlabsos.tar.gz"
    write_bundle(bundle, {MEMBER: day("2024-05-01")})
    ingest.answers = [(503, "60")]
    args = ["--engagement", ENGAGEMENT, "--url", ingest.url, "bundle", str(bundle)]
    took, code, err = stopped_in_a_retry_wait(ingest, args, signal.SIGTERM)
    assert took < 10
    assert code == 1
    said = " ".join(err.split())
    assert "stopped after 0 of " in said
    assert f"bytes of {bundle}: run it again to finish" in said
    assert ingest.statuses == [503]
    env = {**os.environ, "OUTRIDER_SHIP_TOKEN": "otr_secret"}
    again = subprocess.run([OUTRIDER, "ship", *args], env=env, capture_output=True, timeout=60)
    assert again.returncode == 0, again.stderr.decode()
    assert ingest.statuses == [503, 202]
    assert ingest.requests[0][1:] == ingest.requests[1][1:]  # the same chunk again: counted once by its id
