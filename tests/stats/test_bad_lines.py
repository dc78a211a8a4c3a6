"""Bad input is counted by reason, explained with --verbose, and never escapes as an exception."""

from pathlib import Path

from tests.stats.conftest import Run


def test_count_is_printed_without_verbose(run: Run, logs: Path) -> None:
    assert (
        "production_json: 4 of 10 lines could not be used (--verbose tells why)"
        in run(logs / "production_json.log").stderr
    )


def test_counts_name_their_log_type(run: Run, logs: Path) -> None:
    err = run(logs / "production_json.log", logs / "sidekiq.log").stderr
    assert "production_json: 4 of 10 lines could not be used" in err
    assert "sidekiq: 2 of 9 lines could not be used" in err


def test_verbose_explains_reasons_with_samples(run: Run, logs: Path) -> None:
    err = run(logs / "sidekiq.log", "--verbose").stderr
    assert "log type: sidekiq; 9 lines read" in err
    assert "skipped 1 lines: job start" in err
    assert "bad 1 lines: not utf8" in err
    assert "missing_key: {" in err


def test_binary_garbage_does_not_crash(run: Run, tmp_path: Path) -> None:
    junk = tmp_path / "junk.log"
    junk.write_bytes(bytes(range(256)) * 50 + b'\n{"controller": [1, {"a": null}]}\n' + b"{" * 5000 + b"\n")
    for cmd in ("table", "top", "errors"):
        run(junk, "--type", "production_json", cmd=cmd)
