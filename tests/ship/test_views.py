"""What `outrider ship` shows while it works: the follower's table of files and the bundle's progress bar."""

import os
import re
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from typer.testing import CliRunner

from outrider.cli import app
from outrider.ship import cli
from tests.ship.stub import ENGAGEMENT, Ingest

OUTRIDER = str(Path(sys.executable).parent / "outrider")


def test_the_table_shows_each_files_rate_and_lag_in_bytes(
    ingest: Ingest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, growing = tmp_path / "production_json.log", tmp_path / "api_json.log"
    whole.write_bytes(b'{"n":1}\n' * 512)  # 4,096 B of whole lines
    growing.write_bytes(b'{"n":1}\n' * 128 + b'{"n":')  # 1,024 B of lines, then 5 B of a line being written
    clock = iter([100.0])  # the start; every later look is 2 s on
    monkeypatch.setattr(cli, "time", SimpleNamespace(monotonic=lambda: next(clock, 102.0), sleep=time.sleep))
    out = StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=300, highlight=False, soft_wrap=True, emoji=False))
    args = ["ship", "--engagement", ENGAGEMENT, "--url", ingest.url, "tail", str(whole), str(growing), "--once",
            "--state", str(tmp_path / "state.json")]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"OUTRIDER_SHIP_TOKEN": "otr_secret"})
    assert result.exit_code == 0, (result.output, out.getvalue())
    rows = {
        cells[0]: cells[1:]
        for line in out.getvalue().splitlines()
        if len(cells := [c.strip() for c in re.split("[│|┃]", line)[1:-1]]) == 5
    }
    assert rows[str(whole)] == ["production_json", "4,096 B", "2.0 KiB/s", "0 B"]  # 4 KiB in 2 s, all of it sent
    assert rows[str(growing)] == ["api_json", "1,024 B", "0.5 KiB/s", "5 B"]  # the unfinished line waits


def test_bundle_shows_a_progress_bar_on_stderr_in_a_terminal(ingest: Ingest, tmp_path: Path) -> None:
    rails = tmp_path / "bundle" / "var" / "log" / "gitlab" / "gitlab-rails"
    rails.mkdir(parents=True)
    (rails / "production_json.log").write_bytes(b'{"n":1}\n' * 300)  # 2,400 B: "2.4/2.4 kB"
    env = {**os.environ, "OUTRIDER_SHIP_TOKEN": "otr_secret", "FORCE_TERMINAL": "1", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    shipped = subprocess.run(
        [OUTRIDER, "ship", "--engagement", ENGAGEMENT, "--url", ingest.url, "bundle", str(tmp_path / "bundle")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shipped.returncode == 0, shipped.stderr
    assert shipped.stdout == ""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shipped.stderr)  # without colours and cursor moves
    assert re.search(r"bundle\s+━+\s+2\.4/2\.4 kB", plain), plain
    assert "shipped 1 files from" in plain
