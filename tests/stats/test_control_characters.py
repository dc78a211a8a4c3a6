"""Keys come from customers' log lines: their control characters (an ESC sequence that clears the terminal or forges
a link, a newline that forges a line) reach no output, and a key a spreadsheet would run as a formula is inert."""

import csv
import io
import json
import re
from pathlib import Path

import pytest

import logparse
from tests.stats.conftest import Run, sections

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
CONTROLLERS = {
    "X\x1b]8;;https://evil.example\x1b\\Users\x1b]8;;\x1b\\": "X\ufffd]8;;https://evil.example\ufffd\\Users\ufffd]8;;\ufffd\\",
    "Clear\x1b[2J\x1b]0;pwned\x07": "Clear\ufffd[2J\ufffd]0;pwned\ufffd",
    "Forged\nTOTAL\r\t\x7f": "Forged\ufffdTOTAL\ufffd\ufffd\ufffd",
    "Csi\x9b2J\x85": "Csi\ufffd2J\ufffd",
}
KEYS = {f"{raw}#show": f"{shown}#show" for raw, shown in CONTROLLERS.items()}


def line(controller: str, user: str = "alice") -> str:
    record = {"controller": controller, "action": "show", "duration_s": 0.1, "username": user,
              "time": "2024-05-01T10:00:00Z"}  # fmt: skip
    return json.dumps(record, ensure_ascii=False)  # C1 characters raw in UTF-8, C0 ones escaped by JSON


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "production_json.log"
    path.write_text("".join(line(c) + "\n" for c in CONTROLLERS), encoding="utf-8")
    return path


def test_parse_chunk_keys_hold_no_control_character(log: Path) -> None:
    chunk = logparse.parse_chunk(log.read_bytes())
    assert sorted(g.key for g in chunk.groups) == sorted(KEYS.values())


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_stats_prints_no_control_character_but_its_own_newlines(run: Run, log: Path, fmt: str) -> None:
    out = run(log, "--format", fmt).stdout
    assert not CONTROL.search(out.replace("\n", "")), repr(out)
    assert all(key in out for key in KEYS.values())
    assert len(out.splitlines()) == len(run(log, "--format", fmt, "--limit", "1").stdout.splitlines()) + 3


def test_stats_json_keys_hold_no_control_character(run: Run, log: Path) -> None:
    rows = sections(run(log, "--format", "json"))[0]["rows"]
    assert sorted(r["key"] for r in rows) == sorted(KEYS.values())


def test_a_csv_cell_that_a_spreadsheet_would_run_is_led_by_a_quote(run: Run, tmp_path: Path) -> None:
    formulas = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)"]
    log = tmp_path / "production_json.log"
    log.write_text("".join(line(f, user=f) + "\n" for f in ["Users", *formulas]))
    rows = list(csv.DictReader(io.StringIO(run(log, "--format", "csv").stdout)))
    assert sorted(r["key"] for r in rows) == sorted(["'" + f + "#show" for f in formulas] + ["Users#show", "TOTAL"])
    assert {r["count"] for r in rows} == {"1", "5"}
    top = csv.DictReader(io.StringIO(run(log, "--format", "csv", cmd="top").stdout))
    assert sorted(r["value"] for r in top) == sorted(["'" + f for f in formulas] + ["Users", "TOTAL"])
