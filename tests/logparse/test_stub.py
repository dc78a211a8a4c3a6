"""The hand-written `_logparse.pyi` matches the compiled module (mypy's stubtest)."""

import subprocess
import sys


def test_stub_matches_the_extension() -> None:
    cmd = [sys.executable, "-m", "mypy.stubtest", "logparse._logparse"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
