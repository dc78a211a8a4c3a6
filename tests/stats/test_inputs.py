"""Inputs: gzip (also svlogd's rotated `@4000….s` files), stdin, several files, mixed log types."""

import gzip
import json
from pathlib import Path

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


def test_type_option_overrides_detection(run: Run, logs: Path) -> None:
    result = run(logs / "gitaly.log", "--type", "sidekiq", "--format", "json")
    doc = json.loads(result.stdout)
    assert (doc["log_type"], doc["sections"][0]["rows"]) == ("sidekiq", [])
    assert doc["skipped"] == {"not_a_job": 9}  # every line that parses, the logfmt one included


def test_missing_file_and_corrupt_gzip_are_errors(run: Run, logs: Path, tmp_path: Path) -> None:
    # One line however long the path (it was wrapped at 80 columns, breaking the message), brackets kept as typed.
    missing = tmp_path / ("[prod] " + "production_json" * 6 + ".log")
    assert run(missing, code=2).stderr == f"error: {missing}: no such file\n"
    directory = f"error: {tmp_path}: is a directory; name the logs in it (e.g. {tmp_path}/*.log)\n"
    assert run(tmp_path, code=2).stderr == directory
    broken = tmp_path / "@4000.s"
    broken.write_bytes(gzip.compress((logs / "gitaly.log").read_bytes())[:60])
    assert "error:" in run(broken, code=2).stderr


def test_empty_input(run: Run, tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    result = run(empty, "--format", "json")
    (section,) = json.loads(result.stdout)["sections"]
    assert (section["rows"], section["totals"]) == ([], None)
    assert "no GitLab log lines recognised" in result.stderr


def test_piped_stdin_without_a_file_argument(run: Run, logs: Path) -> None:
    data = (logs / "gitaly.log").read_bytes()
    assert counts(sections(run("--format", "json", stdin=data))) == {
        "FindCommit": 3,
        "PostUploadPackWithSidechannel": 2,
    }
    assert "PostUploadPackWithSidechannel" in run(stdin=data).stdout
