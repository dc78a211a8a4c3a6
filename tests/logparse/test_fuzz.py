"""A short atheris run over the parser (the harness mutates the fixture logs' lines)."""

import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("fuzz_logparse.py")


@pytest.mark.slow
def test_short_fuzz_run_finds_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    cmd = [sys.executable, str(HARNESS), str(corpus), "-max_total_time=5", "-seed=1", "-max_len=4096"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done" in result.stderr
