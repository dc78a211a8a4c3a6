"""Shared helpers for the `outrider stats` tests: run the CLI in-process and read its JSON."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from outrider.stats.cli import app

LOGS = Path(__file__).parent.parent / "fixtures" / "logs"
FORMATS = ("production_json", "api_json", "gitaly", "sidekiq")

Run = Callable[..., Result]


@pytest.fixture
def logs() -> Path:
    """The directory of small hand-written GitLab log fixtures."""
    return LOGS


@pytest.fixture
def run() -> Run:
    """Invoke `outrider stats [CMD] ARGS…`; fails the test on an unexpected exit code."""

    def invoke(*args: str | Path, cmd: str | None = None, stdin: bytes | None = None, code: int = 0) -> Result:
        argv = ([cmd] if cmd else []) + [str(a) for a in args]
        result = CliRunner().invoke(app, argv, input=stdin)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    return invoke


def sections(result: Result) -> list[dict[str, Any]]:
    """The sections of a `--format json` run."""
    doc: dict[str, Any] = json.loads(result.stdout)
    return list(doc["sections"])


def rows_by_key(section: dict[str, Any], key: str = "key") -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in section["rows"]}
