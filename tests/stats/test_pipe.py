"""`outrider stats … | head`: a reader that stops reading ends the command quietly, with exit code 0."""

import subprocess
import sys
from pathlib import Path

import pytest

OUTRIDER = str(Path(sys.executable).parent / "outrider")
LINE = '{"time":"2024-05-01T10:00:00Z","controller":"C%d","action":"a","duration_s":0.1,"username":"u%d"}\n'


@pytest.mark.parametrize("args", [["top"], ["table", "--format", "csv"]])  # rich's tables; text written at once
def test_a_reader_that_stops_early_ends_it_quietly(tmp_path: Path, args: list[str]) -> None:
    log = tmp_path / "production_json.log"
    log.write_text("".join(LINE % (i, i) for i in range(5000)))  # ~0.5 MB of table: more than a pipe holds
    with subprocess.Popen(
        [OUTRIDER, "stats", *args, str(log), "--limit", "5000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline()  # `| head -1`
        proc.stdout.close()
        # As cat and grep; it was 1, which `set -o pipefail` takes for a failure.
        assert (proc.wait(timeout=60), proc.stderr.read()) == (0, b"")
