"""The progress bar goes to stderr for large inputs and leaves stdout to the table."""

from pathlib import Path

import pytest

from outrider.stats import sources
from tests.stats.conftest import Run


def test_progress_bar_does_not_touch_stdout(run: Run, logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "PROGRESS_MIN_BYTES", 0)
    quiet = run(logs / "gitaly.log", "--format", "csv").stdout
    monkeypatch.setattr(sources, "BLOCK_BYTES", 1024)  # many blocks, each longer than any line
    assert run(logs / "gitaly.log", "--format", "csv").stdout == quiet
