"""Shared helpers for the logparse tests: the fixture log files."""

from pathlib import Path

import pytest

LOGS = Path(__file__).parent.parent / "fixtures" / "logs"


@pytest.fixture
def logs() -> Path:
    """The directory of small hand-written GitLab log fixtures."""
    return LOGS
