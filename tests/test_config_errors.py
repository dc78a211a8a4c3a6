"""A bad setting stops a service at once with one line per error naming its `OUTRIDER_*` variable (exit 2), never
a traceback, and never a secret's value. Settings are read before anything connects: no Kafka or PostgreSQL here."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from outrider_common.settings import ServiceSettings
from outrider_notifier.settings import NotifierSettings

SECRET = "Qm9zSecret"


def start(service: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m outrider_<service>` with only these `OUTRIDER_*` variables (run where no `.env` is)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OUTRIDER_")}
    return subprocess.run([sys.executable, "-m", f"outrider_{service}"], env={**clean, **env}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize(
    ("service", "env", "expected"),
    [
        ("ingest", {"OUTRIDER_HTTP_PORT": "abc"}, "invalid setting OUTRIDER_HTTP_PORT: Input should be a valid int"),
        ("tracker", {"OUTRIDER_KAFKA_SECURITY_PROTOCOL": "TLS"}, "invalid setting OUTRIDER_KAFKA_SECURITY_PROTOCOL:"),
        ("analyzer", {"OUTRIDER_FINDINGS": "{slow: 1}"}, "invalid setting OUTRIDER_FINDINGS: not valid JSON"),
        ("notifier", {"OUTRIDER_QUIET_HOURS_UTC": "[25, 1]"}, "invalid setting OUTRIDER_QUIET_HOURS_UTC: [25, 1]"),
        (
            "analyzer",
            {"OUTRIDER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "invalid settings: OUTRIDER_KAFKA_SASL_USERNAME is required with SASL_SSL",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_variable(
    service: str, env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    done = start(service, tmp_path, **env)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(expected), done.stderr


@pytest.mark.parametrize("cut", ["/", "#", "?", "@", ":x/", "[3t]"])
def test_a_dsn_whose_password_needs_encoding_is_refused_without_showing_it(cut: str, tmp_path: Path) -> None:
    # An unencoded / (or # ?) ends the user info early: asyncpg took the password's start for the port, and said so.
    dsn = f"postgresql://outrider:Xy7{cut}{SECRET}@pg:5432/outrider"
    done = start("ingest", tmp_path, OUTRIDER_DATABASE_URL=dsn)
    assert done.returncode == 2, done.stderr
    assert "Xy7" not in done.stderr
    assert SECRET not in done.stderr
    assert done.stderr.startswith("invalid setting OUTRIDER_DATABASE_URL:")
    assert "postgresql://outrider:***@pg:5432/outrider" in done.stderr
    assert "percent-encode" in done.stderr


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://outrider:Xy7%2FQm9z%23Secret@pg:5432/outrider",
        "postgres://outrider@pg/outrider?sslmode=require",
        "postgresql://u:p@pg-1:5432,pg-2:5433/outrider",
        "postgresql://u:p@[::1]:5432/outrider",
        "postgresql:///outrider?host=/var/run/postgresql",
        "postgresql://pg/outrider?user=admin@myserver",  # Azure-style user names in the query: asyncpg reads them
        "postgresql://u@pg/outrider?password=p@ss",
    ],
)
def test_a_dsn_that_parses_is_kept(dsn: str) -> None:
    assert ServiceSettings(database_url=dsn).database_url.get_secret_value() == dsn


@pytest.mark.parametrize("quiet", [(25, 1), (-3, 30), (22, 25), (24, 7)])
def test_quiet_hours_out_of_range_are_refused(quiet: tuple[int, int]) -> None:
    # [25, 1] muted only 00-01; [-3, 30] muted every hour.
    with pytest.raises(ValidationError, match="start 0-23 and end 0-24"):
        NotifierSettings(quiet_hours_utc=quiet)


@pytest.mark.parametrize("quiet", [(22, 7), (0, 24), (9, 17), (23, 0), (5, 5)])
def test_quiet_hours_in_range_are_kept(quiet: tuple[int, int]) -> None:
    assert NotifierSettings(quiet_hours_utc=quiet).quiet_hours_utc == quiet
