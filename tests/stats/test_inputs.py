"""Inputs: gzip (also svlogd's rotated `@4000….s` files), stdin, pipes, several files, mixed log types."""

import gzip
import json
import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from outrider.stats import sources
from tests.stats.conftest import Run, rows_by_key, sections


def counts(result_sections: list[dict[str, object]]) -> dict[str, int]:
    (section,) = result_sections
    return {k: int(r["count"]) for k, r in rows_by_key(section).items()}


def test_rotated_gzip_file_without_gz_suffix(run: Run, logs: Path, tmp_path: Path) -> None:
    rotated = tmp_path / "@40000000624492fa18da6f34.s"
    rotated.write_bytes(gzip.compress((logs / "gitaly.log").read_bytes()))
    expected = counts(sections(run(logs / "gitaly.log", "--format", "json")))
    assert (
        counts(sections(run(rotated, "--format", "json")))
        == expected
        == {
            "FindCommit": 3,
            "PostUploadPackWithSidechannel": 2,
        }
    )


def test_stdin(run: Run, logs: Path) -> None:
    data = (logs / "sidekiq.log").read_bytes()
    assert counts(sections(run("-", "--format", "json", stdin=data))) == {"AdminEmailsWorker": 2, "PostReceive": 3}


def test_several_files_of_one_type_are_one_table(run: Run, logs: Path) -> None:
    log = logs / "sidekiq.log"
    assert counts(sections(run(log, log, "--format", "json"))) == {"AdminEmailsWorker": 4, "PostReceive": 6}


def test_files_of_different_types_get_a_table_each(run: Run, logs: Path) -> None:
    result = run(logs / "gitaly.log", logs / "api_json.log", "--format", "json")
    docs = json.loads(result.stdout)
    assert [d["log_type"] for d in docs] == ["gitaly", "api_json"]
    # As tables, each after its log type's name (the key columns alone would leave it to guess).
    lines = run(logs / "gitaly.log", logs / "api_json.log").stdout.splitlines()
    assert lines[0] == "gitaly"
    assert lines[1].startswith("METHOD ")
    assert lines[lines.index("api_json") - 1] == ""
    assert lines[lines.index("api_json") + 1].startswith("ROUTE ")


def test_type_option_overrides_detection(run: Run, logs: Path) -> None:
    result = run(logs / "gitaly.log", "--type", "sidekiq", "--format", "json", code=2)
    # Every line that parses, the logfmt one included: the calls are Gitaly's, the two other lines no job.
    assert "sidekiq: no line counted; 9 of 9 lines skipped (not a job: 2, other log type: 7)" in result.stderr


RAILS = b'{"time":"2024-05-01T10:00:0%dZ","controller":"A","action":"b","status":200,"duration_s":1}\n'


def test_a_type_that_no_line_has_is_told_without_verbose(run: Run, tmp_path: Path) -> None:
    # An empty table alone would read as "no calls", with exit 0 as if all were well: only why, and exit 2.
    log = tmp_path / "production_json.log"
    log.write_bytes(b"".join(RAILS % i for i in range(5)))
    result = run(log, "--type", "gitaly", code=2)
    assert result.stdout == ""
    assert result.stderr == (
        "gitaly: 5 of 5 lines belong to other log types (skipped)\n"
        "gitaly: no line counted; 5 of 5 lines skipped (other log type: 5); drop --type to detect the log type\n"
    )


def test_a_log_of_skipped_lines_alone_is_told(run: Run, tmp_path: Path) -> None:
    # Detected, not named: no --type to drop. Lines of the log that are not requests are an answer (no requests
    # then), not a wrong input: exit code 0.
    log = tmp_path / "current"
    log.write_bytes(b'{"class":"W","jid":"1","job_status":"start","time":"2024-05-01T10:00:00Z"}\n' * 3)
    result = run(log)
    assert result.stderr == "sidekiq: no line counted; 3 of 3 lines skipped (job start: 3)\n"


def test_a_log_of_non_requests_with_a_line_cut_short_is_still_an_answer(run: Run, tmp_path: Path) -> None:
    # Gitaly's non-call lines and one line cut short: a Gitaly log with no calls in it, not a wrong input.
    log = tmp_path / "current"
    log.write_bytes(b"".join(b'{"level":"info","msg":"served bytes","time":"2024-05-01T10:00:0%dZ"}\n' % i
                             for i in range(3)) + b'{"level":"info","msg":"cut sh\n')  # fmt: skip
    result = run("--type", "gitaly", log)
    assert "no line counted; 3 of 4 lines skipped (not a call: 3)" in result.stderr
    assert "1 of 4 lines could not be used" in result.stderr


def test_missing_file_and_corrupt_gzip_are_errors(run: Run, logs: Path, tmp_path: Path) -> None:
    # One line however long the path (it was wrapped at 80 columns, breaking the message), brackets kept as typed.
    missing = tmp_path / ("[prod] " + "production_json" * 6 + ".log")
    assert run(missing, code=2).stderr == f"error: {missing}: no such file\n"
    directory = f"error: {tmp_path}: is a directory; name the logs in it (e.g. {tmp_path}/*.log)\n"
    assert run(tmp_path, code=2).stderr == directory
    broken = tmp_path / "@4000.s"  # cut before anything came out of it: as good as corrupt
    broken.write_bytes(gzip.compress((logs / "gitaly.log").read_bytes())[:60])
    assert "error:" in run(broken, code=2).stderr
    garbled = bytearray(gzip.compress((logs / "gitaly.log").read_bytes()))
    garbled[12:14] = b"\xff\xff"  # the first deflate block's header: "invalid code lengths set"
    broken.write_bytes(garbled)
    assert run(broken, code=2).stderr.startswith(f"error: {broken}: Error -3 while decompressing data")


@pytest.mark.parametrize("cmd", ["table", "top", "errors"])
@pytest.mark.parametrize("type_option", [[], ["--type", "production_json"]])
def test_an_empty_input_is_said_to_be_empty_not_an_error(
    run: Run, tmp_path: Path, cmd: str, type_option: list[str]
) -> None:
    # Not "no GitLab log lines recognised; try --type": no --type helps an empty file, which is no error either.
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    result = run(empty, *type_option, "--format", "json", cmd=cmd)
    assert result.stderr == f"{empty}: empty\n"
    assert all(s["rows"] == [] for s in json.loads(result.stdout)["sections"])


@pytest.mark.parametrize("cmd", ["table", "top", "errors"])
def test_an_input_of_which_no_line_is_a_gitlab_log_is_an_error(run: Run, tmp_path: Path, cmd: str) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 20)  # 20 newlines, and what follows the last
    result = run(garbage, cmd=cmd, code=2)
    assert result.stdout == ""
    assert result.stderr.startswith("no GitLab log lines recognised in 21 lines; try --type\n")


def test_piped_stdin_without_a_file_argument(run: Run, logs: Path) -> None:
    data = (logs / "gitaly.log").read_bytes()
    assert counts(sections(run("--format", "json", stdin=data))) == {
        "FindCommit": 3,
        "PostUploadPackWithSidechannel": 2,
    }
    assert "PostUploadPackWithSidechannel" in run(stdin=data).stdout


@contextmanager
def fifo(path: Path, data: bytes) -> Iterator[Path]:
    """A named pipe that a thread writes `data` (under the pipe's 64 KiB) into, as `<(zcat f.gz)` is."""
    os.mkfifo(path)
    writer = threading.Thread(target=path.write_bytes, args=(data,))
    writer.start()
    try:
        yield path
    finally:
        # Opened here too, so that the writer finishes even if the pipe was never read.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        writer.join(timeout=10)
        os.close(fd)


def test_a_pipe_or_a_device_is_an_input_and_each_line_counts(run: Run, logs: Path, tmp_path: Path) -> None:
    # The log type is told from what is read for the table: a pipe cannot be read twice.
    with fifo(tmp_path / "pipe", (logs / "gitaly.log").read_bytes()) as pipe:
        doc = json.loads(run(pipe, "--format", "json").stdout)
    assert (doc["log_type"], doc["lines"]) == ("gitaly", 9)
    assert counts(doc["sections"]) == {"FindCommit": 3, "PostUploadPackWithSidechannel": 2}
    assert json.loads(run("/dev/null", "--format", "json").stdout)["lines"] == 0


def test_a_gzip_cut_short_counts_its_lines_before_the_cut_with_a_warning(run: Run, logs: Path, tmp_path: Path) -> None:
    lines = b"".join(
        b'{"controller":"C%d","action":"a","status":200,"duration_s":%d.%d}\n' % (i % 7, i % 3, i) for i in range(3000)
    )
    whole = gzip.compress(lines)
    cut = tmp_path / "@4000.s"
    cut.write_bytes(whole[: len(whole) // 2])
    before_cut = zlib.decompressobj(wbits=31).decompress(cut.read_bytes())  # what zcat prints
    assert 0 < before_cut.count(b"\n") < 3000
    result = run(cut, logs / "production_json.log", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["lines"] == before_cut.count(b"\n") + 10  # the line at the cut is dropped; 10 in the other
    assert f"warning: {cut}: cut short;" in result.stderr


def test_the_type_is_told_past_a_long_head_of_gitaly_lines_that_are_not_calls(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = b'{"level":"info","msg":"finished HTTP request","duration_ms":3,"method":"GET","url":"/metrics"}\n'
    call = b'{"grpc.code":"OK","grpc.method":"FindCommit","grpc.time_ms":%d,"msg":"finished unary call"}\n'
    data = http * 1500 + call % 2 + call % 4
    log = tmp_path / "current"
    log.write_bytes(data)
    expected = {"log_type": "gitaly", "lines": 1502, "skipped": {"not_a_call": 1500}}
    doc = json.loads(run(log, "--format", "json").stdout)
    assert {k: doc[k] for k in expected} == expected
    assert counts(doc["sections"]) == {"FindCommit": 2}
    # From stdin, in blocks of which the first ones tell no type: they are held, not lost.
    monkeypatch.setattr(sources, "BLOCK_BYTES", 16 << 10)
    doc = json.loads(run("--format", "json", stdin=data).stdout)
    assert {k: doc[k] for k in expected} == expected


def test_an_empty_input_joins_no_table(run: Run, logs: Path, tmp_path: Path) -> None:
    empty, empty_gz = tmp_path / "empty.log", tmp_path / "empty.log.gz"
    empty.write_bytes(b"")
    empty_gz.write_bytes(gzip.compress(b""))
    alone = run(logs / "sidekiq.log", "--format", "json")
    result = run(logs / "sidekiq.log", empty, empty_gz, "--format", "json")
    assert result.stdout == alone.stdout
    assert result.stderr == f"{empty}: empty\n{empty_gz}: empty\n" + alone.stderr


def test_stdin_joins_the_table_of_its_type(run: Run, logs: Path) -> None:
    log = logs / "sidekiq.log"
    doc = json.loads(run("-", log, "--format", "json", stdin=log.read_bytes()).stdout)
    assert counts(doc["sections"]) == {"AdminEmailsWorker": 4, "PostReceive": 6}


def test_lines_of_other_log_types_in_a_file_are_told_of(run: Run, tmp_path: Path) -> None:
    # Helm's webservice stdout: each line names its log type; the file reads as the commonest one.
    rails = b'{"subcomponent":"production_json","controller":"A","action":"b","status":200,"duration_s":1}\n'
    api = b'{"subcomponent":"api_json","route":"/r","method":"GET","status":200,"duration_s":1}\n'
    app = b'{"subcomponent":"application_json","message":"hello"}\n'
    log = tmp_path / "webservice.log"
    log.write_bytes(rails * 5 + api * 2 + app)
    result = run(log, "--format", "json")
    assert counts(json.loads(result.stdout)["sections"]) == {"A#b": 5}
    told = "production_json: 3 of 8 lines belong to other log types (skipped); --type api_json shows them\n"
    assert result.stderr == told
    assert counts(sections(run(log, "--type", "api_json", "--format", "json"))) == {"GET /r": 2}


def test_lines_of_another_type_without_a_tag_are_told_as_such_not_as_bad(run: Run, tmp_path: Path) -> None:
    # `cat gitaly/current sidekiq/current | outrider stats`: the Gitaly calls are Gitaly's, not Sidekiq non-jobs.
    gitaly = b'{"time":"2024-05-01T10:00:0%dZ","grpc.method":"FindCommit","grpc.code":"OK","grpc.time_ms":10}\n'
    sidekiq = b'{"time":"2024-05-01T10:00:0%dZ","class":"W","jid":"1","job_status":"done","duration_s":1}\n'
    rails = b'{"time":"2024-05-01T10:00:0%dZ","controller":"A","action":"b","status":200,"duration_s":1}\n'
    log = tmp_path / "mixed.log"
    log.write_bytes(b"".join(gitaly % i for i in range(3)) + b"".join(sidekiq % i for i in range(4)))
    result = run(log, "--format", "json")
    assert counts(json.loads(result.stdout)["sections"]) == {"W": 4}
    assert result.stderr == "sidekiq: 3 of 7 lines belong to other log types (skipped); --type gitaly shows them\n"
    # Rails lines with Gitaly calls among them: the calls are skipped, not "missing key" bad lines.
    log.write_bytes(b"".join(rails % i for i in range(5)) + b"".join(gitaly % i for i in range(3)))
    doc = json.loads(run(log, "--format", "json").stdout)
    assert (doc["bad_lines"], doc["skipped"]) == ({}, {"other_log_type": 3})


def test_a_rate_over_no_time_is_shown_as_none_not_zero(run: Run, tmp_path: Path) -> None:
    # Gitaly 12's times have whole seconds: 5 calls in one second have no measurable rate (0.00 read as no traffic).
    call = '{"time":"2019-09-17T22:17:19Z","grpc.method":"FindCommit","grpc.code":"OK","grpc.time_ms":%d}\n'
    log = tmp_path / "current"
    log.write_text("".join(call % (i + 1) for i in range(5)))
    doc = json.loads(run(log, "--format", "json").stdout)
    rows = doc["sections"][0]["rows"]
    assert [(r["count"], r["rps"]) for r in rows] == [(5, None)]
    row = next(line for line in run(log).stdout.splitlines() if "FindCommit" in line)
    assert row.split()[1:3] == ["5", "-"], row  # COUNT, RPS
