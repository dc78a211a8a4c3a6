"""The tailer and checkpoints on real files: appends, partial lines, rename rotation, copytruncate, restarts."""

import gzip
import io
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from outrider.ship.bundle import pieces
from outrider.ship.checkpoint import Checkpoints, StateFileError
from outrider.ship.tailer import BATCH_BYTES, ROTATION_GRACE_S, LogFileError, Tailer, log_type_of, paths_of


def numbered(first: int, end: int) -> bytes:
    return b"".join(b'{"n":%d}\n' % i for i in range(first, end))


def age(path: Path, seconds: float) -> None:
    """Date the file's last write `seconds` back, as if nothing had written to it since."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def drain(tailer: Tailer) -> list[bytes]:
    """Ship everything readable now, acknowledging each batch in full."""
    out = []
    for batch in tailer.batches():
        out.append(batch.data)
        tailer.shipped(batch, batch.offset + len(batch.data))
    return out


def shipped_then_stopped(log: Path, state: Path, then: bytes = b"") -> None:
    """`log` holding lines 1-2, shipped by a shipper that then stopped (an upgrade, a reboot), and `then` written to
    it afterwards."""
    log.write_bytes(numbered(1, 3))
    before = Tailer(log, Checkpoints(state))
    assert drain(before) == [numbered(1, 3)]
    before.close()
    with log.open("ab") as f:
        f.write(then)


def restarted(log: Path, state: Path, max_bytes: int = BATCH_BYTES) -> tuple[list[bytes], list[str]]:
    """A shipper started again on `log`: what it ships now (each batch acknowledged), and what it said."""
    told: list[str] = []
    tailer = Tailer(log, Checkpoints(state), max_bytes=max_bytes, rotation_grace_s=0, tell=told.append)
    try:
        return drain(tailer), told
    finally:
        tailer.close()


def test_whole_lines_only_and_the_rest_once_it_is_complete(tmp_path: Path) -> None:
    log = tmp_path / "production_json.log"
    log.write_bytes(b"a\nb\npartial")
    tailer = Tailer(log, Checkpoints(tmp_path / "state.json"))
    assert drain(tailer) == [b"a\nb\n"]
    with log.open("ab") as f:
        f.write(b" line\nc\n")
    assert drain(tailer) == [b"partial line\nc\n"]
    assert drain(tailer) == []
    tailer.close()


def test_rename_rotation_finishes_the_old_file_then_starts_the_new(tmp_path: Path) -> None:
    log, rotated = tmp_path / "current", tmp_path / "@4000000064a1b2c3.s"
    log.write_bytes(b"1\n2\n")
    tailer = Tailer(log, Checkpoints(tmp_path / "state.json"))
    assert drain(tailer) == [b"1\n2\n"]
    with log.open("ab") as f:
        f.write(b"3\nlast-without-newline")  # written just before the rotation
    os.rename(log, rotated)
    log.write_bytes(b"4\n")
    assert drain(tailer) == [b"3\n"]  # the last line may still be being written
    age(rotated, ROTATION_GRACE_S)
    assert drain(tailer) == [b"last-without-newline", b"4\n"]
    tailer.close()


def test_lines_written_to_a_renamed_file_until_the_application_reopens_its_log_are_shipped(tmp_path: Path) -> None:
    log, rotated = tmp_path / "production_json.log", tmp_path / "production_json.log.1"
    log.write_bytes(numbered(0, 10))
    tailer = Tailer(log, Checkpoints(tmp_path / "state.json"))
    assert drain(tailer) == [numbered(0, 10)]
    application = log.open("ab")
    os.rename(log, rotated)  # logrotate's create: a new empty file, then a signal to the application to reopen
    log.write_bytes(b"")
    application.write(b'{"n":10,"half')  # the application is mid-line when the tailer looks
    application.flush()
    assert drain(tailer) == []
    application.write(b'":1}\n' + numbered(11, 20))
    application.close()
    log.write_bytes(numbered(20, 25))  # reopened: the new file from now on
    assert drain(tailer) == [b'{"n":10,"half":1}\n' + numbered(11, 20)]
    assert drain(tailer) == []  # the new file waits until the old one has been quiet for the grace period
    age(rotated, ROTATION_GRACE_S)
    assert drain(tailer) == [numbered(20, 25)]
    tailer.close()


def test_copytruncate_starts_over_and_a_restart_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    log, state = tmp_path / "api_json.log", tmp_path / "state.json"
    log.write_bytes(b"x\ny\n")
    tailer = Tailer(log, Checkpoints(state))
    assert drain(tailer) == [b"x\ny\n"]
    log.write_bytes(b"z\n")  # truncated in place and written again
    assert drain(tailer) == [b"z\n"]
    tailer.close()
    with log.open("ab") as f:
        f.write(b"w\n")
    restarted = Tailer(log, Checkpoints(state))  # a new process reads the state file
    assert drain(restarted) == [b"w\n"]
    restarted.close()


def test_a_batch_sent_before_a_restart_is_sent_again_byte_for_byte_before_what_came_after(tmp_path: Path) -> None:
    # Ingest's chunk ids are start offsets: a longer resend from the same start would be dropped whole as a duplicate.
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    log.write_bytes(b"a\nb\n")
    tailer = Tailer(log, Checkpoints(state))
    sent = next(tailer.batches())  # ingest takes it; the shipper dies before recording the answer
    tailer.close()
    with log.open("ab") as f:
        f.write(b"c\npartial")
    restarted = Tailer(log, Checkpoints(state))
    resent = next(restarted.batches())
    assert (resent.file_id, resent.offset, resent.data) == (sent.file_id, 0, b"a\nb\n")
    restarted.shipped(resent, 4)
    assert drain(restarted) == [b"c\n"]
    restarted.close()
    assert Checkpoints(state).offsets == {sent.file_id: 6}
    assert Checkpoints(state).in_flight(sent.file_id) is None


def test_a_range_in_flight_survives_in_the_state_file_until_it_is_acknowledged(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    checkpoints = Checkpoints(state)
    checkpoints.advance("1:2:aa", 10)
    checkpoints.begin("1:2:aa", 10, 25)
    checkpoints.begin("1:3:bb", 0, 7)
    assert json.loads(state.read_text()) == {
        "1:2:aa": {"offset": 10, "sending": [10, 25]},
        "1:3:bb": {"offset": 0, "sending": [0, 7]},
    }
    reloaded = Checkpoints(state)
    assert (reloaded.get("1:2:aa"), reloaded.in_flight("1:2:aa"), reloaded.in_flight("1:3:bb")) == (
        10,
        (10, 25),
        (0, 7),
    )
    reloaded.advance("1:2:aa", 25)
    assert json.loads(state.read_text()) == {"1:2:aa": 25, "1:3:bb": {"offset": 0, "sending": [0, 7]}}


def test_copytruncate_is_seen_when_the_file_grew_past_the_old_offset_before_the_next_look(tmp_path: Path) -> None:
    log = tmp_path / "production_json.log"
    old = b"".join(b'{"n":%d}\n' % i for i in range(10))
    log.write_bytes(old)
    tailer = Tailer(log, Checkpoints(tmp_path / "state.json"))
    assert drain(tailer) == [old]
    new = b"".join(b'{"n":%d}\n' % i for i in range(10, 40))  # longer than what was shipped
    with log.open("r+b") as f:  # copytruncate, then the application writes on before the tailer looks again
        f.truncate(0)
        f.write(new)
    assert drain(tailer) == [new]
    tailer.close()


def test_batches_respect_the_size_limit_on_line_boundaries(tmp_path: Path) -> None:
    log = tmp_path / "production_json.log"
    lines = [b"%05d\n" % i for i in range(100)]
    log.write_bytes(b"".join(lines))
    tailer = Tailer(log, Checkpoints(tmp_path / "s.json"), max_bytes=64)
    batches = drain(tailer)
    tailer.close()
    assert b"".join(batches) == b"".join(lines)
    assert all(len(b) <= 64 and b.endswith(b"\n") for b in batches)
    assert [len(p) for _, p in pieces(io.BytesIO(b"".join(lines)), max_bytes=64)] == [len(b) for b in batches]


def test_a_line_longer_than_a_batch_is_sent_whole_once_it_is_complete(tmp_path: Path) -> None:
    # Cut at the batch size, ingest would count two bad lines instead of one good one.
    log = tmp_path / "production_json.log"
    long = b'{"a":"' + b"x" * 200 + b'"}\n'
    log.write_bytes(b'{"n":1}\n' + long[:150])  # the long line is still being written
    tailer = Tailer(log, Checkpoints(tmp_path / "s.json"), max_bytes=64)
    assert drain(tailer) == [b'{"n":1}\n']
    with log.open("ab") as f:
        f.write(long[150:] + b'{"n":2}\n')
    assert drain(tailer) == [long, b'{"n":2}\n']
    tailer.close()


def test_log_types_from_omnibus_paths() -> None:
    assert log_type_of(Path("/var/log/gitlab/gitlab-rails/production_json.log")) == "production_json"
    assert log_type_of(Path("/var/log/gitlab/gitlab-rails/api_json.log.1")) == "api_json"
    assert log_type_of(Path("/var/log/gitlab/gitaly/current")) == "gitaly"
    assert log_type_of(Path("/var/log/gitlab/sidekiq/current")) == "sidekiq"
    assert log_type_of(Path("/tmp/whatever.log")) is None


def test_a_truncated_file_with_the_same_long_prefix_gets_a_new_identity(tmp_path: Path) -> None:
    # GitLab JSON lines share hundreds of bytes of prefix; reusing the old identity would repeat chunk ids at offset 0.
    prefix = b'{"method":"GET","path":"/api/v4/jobs/request","format":"json","controller":"Grape"' + b" " * 300
    log = tmp_path / "production_json.log"
    log.write_bytes(prefix + b',"time":"10:00:01"}\n' + prefix + b',"time":"10:00:02"}\n')
    tailer = Tailer(log, Checkpoints(tmp_path / "state.json"))
    old = next(tailer.batches())
    tailer.shipped(old, old.offset + len(old.data))
    log.write_bytes(prefix + b',"time":"10:00:03"}\n')  # copytruncate
    new = next(tailer.batches())
    tailer.close()
    assert (new.offset, new.data) == (0, prefix + b',"time":"10:00:03"}\n')
    assert new.file_id != old.file_id


def test_two_names_of_one_file_ship_it_once(tmp_path: Path) -> None:
    log, link = tmp_path / "production_json.log", tmp_path / "production_json.log.1"
    log.write_bytes(b"1\n2\n")
    os.link(log, link)  # as when overlapping globs see a file under its old and its rotated name
    checkpoints = Checkpoints(tmp_path / "state.json")
    first, second = Tailer(log, checkpoints), Tailer(link, checkpoints)
    assert drain(first) == [b"1\n2\n"]
    assert drain(second) == []
    with log.open("ab") as f:
        f.write(b"3\n")
    assert drain(second) == [b"3\n"]
    assert drain(first) == []
    first.close()
    second.close()


def test_checkpoints_survive_a_restart_and_leave_no_temporary_files(tmp_path: Path) -> None:
    state = tmp_path / "state" / "ship.json"
    checkpoints = Checkpoints(state)
    checkpoints.advance("1:2:aa", 10)
    checkpoints.advance("1:3:bb", 7)
    checkpoints.advance("1:2:aa", 25)
    assert Checkpoints(state).offsets == {"1:2:aa": 25, "1:3:bb": 7}
    assert os.listdir(state.parent) == ["ship.json"]


def test_paths_of_expands_globs_once_each_keeps_awaited_paths_and_skips_compressed(tmp_path: Path) -> None:
    for name in ("current", "@4000000064a1b2c3.s", "production_json.log", "production_json.log.1.gz"):
        (tmp_path / name).write_bytes(b"x\n")
    patterns = [str(tmp_path / "production_json.log*"), str(tmp_path / "*.log"), str(tmp_path / "api_json.log")]
    assert paths_of(patterns) == [tmp_path / "production_json.log", tmp_path / "api_json.log"]
    assert paths_of([str(tmp_path / "nothing-*.log")]) == []


def test_paths_of_skips_directories_a_glob_matches(tmp_path: Path) -> None:
    (tmp_path / "gitaly").mkdir()
    (tmp_path / "api_json.log").write_bytes(b"x\n")
    assert paths_of([str(tmp_path / "*")]) == [tmp_path / "api_json.log"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"broken', "not JSON"),
        (b"[]", "not a map"),
        (b'{"1:2:aa": "10"}', "not a map"),
        (b'{"1:2:aa": -1}', "not a map"),
        (b'{"1:2:aa": {"offset": 3, "sending": [9, 4]}}', "not a map"),
        (b'{"1:2:aa": {"offset": 3}}', "not a map"),
    ],
)
def test_a_corrupt_state_file_is_refused_and_left_as_it_is(tmp_path: Path, content: bytes, why: str) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(content)
    with pytest.raises(StateFileError, match=f"corrupt state file \\({why}"):
        Checkpoints(state)
    assert state.read_bytes() == content


def test_a_file_that_cannot_be_opened_says_which_and_why(tmp_path: Path) -> None:
    tailer = Tailer(tmp_path, Checkpoints(tmp_path / "state.json"))  # a directory where a log was expected
    with pytest.raises(LogFileError, match=f"^{tmp_path}: cannot read it: is a directory$"):
        list(tailer.batches())


def test_a_state_file_that_cannot_be_saved_says_why(tmp_path: Path) -> None:
    checkpoints = Checkpoints(tmp_path / "state" / "ship.json")
    (tmp_path / "state").write_bytes(b"")  # a file where its directory should be
    with pytest.raises(
        StateFileError, match=f"^{tmp_path / 'state' / 'ship.json'}: cannot save the state file: file exists$"
    ):
        checkpoints.advance("1:2:aa", 10)


def test_a_file_rotated_while_no_shipper_ran_is_finished_before_the_new_one(tmp_path: Path) -> None:
    # svlogd renames `current` to @<tai64n>.s; logrotate to name.1: the state knows the file by identity, not name.
    for name, rotated in (("current", "@4000000064a1b2c3.s"), ("production_json.log", "production_json.log.1")):
        log, state = tmp_path / name, tmp_path / f"{name}.state.json"
        shipped_then_stopped(log, state, numbered(3, 5))
        os.rename(log, tmp_path / rotated)
        log.write_bytes(numbered(5, 6))
        shipped, told = restarted(log, state)
        assert shipped == [numbered(3, 5), numbered(5, 6)]
        assert told == [f"{tmp_path / rotated}: rotated while no shipper ran; shipping its rest first (from offset 16)"]
        assert restarted(log, state)[0] == []  # finished: not sent a second time


def gzip_away(path: Path, rotated: Path) -> None:
    """logrotate's `compress` (name.1.gz) or svlogd's processor (@….s): a compressed copy, then the file deleted."""
    rotated.write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()


def test_a_file_rotated_and_compressed_while_no_shipper_ran_is_finished_from_the_compressed_copy(
    tmp_path: Path,
) -> None:
    # logrotate without delaycompress, or a stop across two rotations; svlogd gzips `current`'s rotations.
    for name, rotated in (("current", "@4000000064a1b2c3.s"), ("production_json.log", "production_json.log.1.gz")):
        log, state = tmp_path / name, tmp_path / f"{name}.state.json"
        shipped_then_stopped(log, state, numbered(3, 9) + b'{"n":9}')  # its last line never got its newline
        os.rename(log, tmp_path / f"{name}.1")
        gzip_away(tmp_path / f"{name}.1", tmp_path / rotated)
        log.write_bytes(numbered(10, 11))
        shipped, told = restarted(log, state, max_bytes=20)
        assert b"".join(shipped) == numbered(3, 9) + b'{"n":9}' + numbered(10, 11)  # batches cut mid-line
        assert told == [f"{tmp_path / rotated}: rotated while no shipper ran; shipping its rest first (from offset 16)"]
        assert restarted(log, state)[0] == []  # finished: not expanded or sent a second time


def test_a_copytruncate_compressed_while_no_shipper_ran_is_finished_from_the_compressed_copy(tmp_path: Path) -> None:
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    shipped_then_stopped(log, state, numbered(3, 5))
    (tmp_path / "production_json.log.1.gz").write_bytes(gzip.compress(log.read_bytes()))  # copytruncate + compress
    log.write_bytes(numbered(5, 6))
    shipped, told = restarted(log, state)
    assert shipped == [numbered(3, 5), numbered(5, 6)]
    copy = tmp_path / "production_json.log.1.gz"
    assert told == [f"{copy}: rotated while no shipper ran; shipping its rest first (from offset 16)"]


def test_a_compressed_copy_cut_short_is_said_and_the_file_at_the_path_still_shipped(tmp_path: Path) -> None:
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    shipped_then_stopped(log, state, numbered(3, 5000))
    packed = gzip.compress(log.read_bytes())
    (tmp_path / "production_json.log.1.gz").write_bytes(packed[: len(packed) // 2])  # gzip still writing it
    log.unlink()
    log.write_bytes(numbered(5000, 5001))
    shipped, told = restarted(log, state)
    assert shipped == [numbered(5000, 5001)]
    assert told == [
        f"{tmp_path / 'production_json.log.1.gz'}: cannot read it to finish a rotated file: Compressed file ended "
        "before the end-of-stream marker was reached"
    ]


def test_a_copytruncate_while_no_shipper_ran_finishes_the_old_lines_from_the_copy(tmp_path: Path) -> None:
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    shipped_then_stopped(log, state, numbered(3, 5))
    shutil.copy(log, tmp_path / "production_json.log.1")  # logrotate's copytruncate: a copy, then truncated in place
    log.write_bytes(numbered(5, 6))
    assert restarted(log, state)[0] == [numbered(3, 5), numbered(5, 6)]


def test_a_copytruncate_while_no_shipper_ran_without_a_copy_beside_it_is_warned_about(tmp_path: Path) -> None:
    log, state = tmp_path / "production_json.log", tmp_path / "state.json"
    shipped_then_stopped(log, state)
    log.write_bytes(numbered(5, 6))  # truncated in place; its copy went elsewhere, or was compressed
    shipped, told = restarted(log, state)
    assert shipped == [numbered(5, 6)]
    assert told == [
        f"{log}: truncated while no shipper ran, and no copy of it beside it: lines written after offset 16 before "
        "the truncation were not shipped"
    ]


@pytest.mark.parametrize("compressed", [False, True], ids=["copy", "compressed copy"])
def test_a_copytruncate_while_following_finishes_the_unread_lines_from_the_copy(
    tmp_path: Path, compressed: bool
) -> None:
    log = tmp_path / "production_json.log"
    log.write_bytes(numbered(1, 3))
    tailer = Tailer(log, Checkpoints(tmp_path / "state.json"), rotation_grace_s=0)
    assert drain(tailer) == [numbered(1, 3)]
    with log.open("ab") as f:  # written after the tailer's last look
        f.write(numbered(3, 5))
    shutil.copy(log, tmp_path / "production_json.log.1")  # logrotate's copytruncate: a copy, then truncated in place
    with log.open("r+b") as f:
        f.truncate(0)
        f.write(numbered(5, 6))
    if compressed:  # logrotate's compress without delaycompress, done before the tailer's next look
        gzip_away(tmp_path / "production_json.log.1", tmp_path / "production_json.log.1.gz")
    assert drain(tailer) == [numbered(3, 5), numbered(5, 6)]
    tailer.close()
