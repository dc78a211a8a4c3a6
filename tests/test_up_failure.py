"""`outrider up` is all or nothing: a step that fails stops what was already started, and `down` stops a server left
by an `up` that was killed before it recorded the stack."""

import os
from pathlib import Path

import pytest

from outrider import up as stack
from outrider.devstack import Kafka, Postgres, StackError, runs

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class _NoJars(Kafka):
    def start(self, timeout: float = 90.0) -> None:
        raise StackError("Kafka jars missing in .cache/kafka/libs: run scripts/bootstrap.sh")


def _postgres_pid(state: Path) -> int | None:
    pid_file = state / "postgres" / "data" / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "outrider"
    tmp_path.chmod(0o755)  # PostgreSQL runs as its own user when we are root: it must reach the data directory
    monkeypatch.setattr(stack, "STATE", state)
    monkeypatch.setattr(stack, "ADMIN_TOKEN_FILE", state / "admin-token")
    return state


def test_a_failed_up_stops_the_postgres_it_started(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[int] = []
    real_start = Postgres.start

    def start(self: Postgres, timeout: float = 60.0) -> None:
        real_start(self, timeout)
        started.append(_postgres_pid(state) or 0)

    monkeypatch.setattr(Postgres, "start", start)
    monkeypatch.setattr(stack, "Kafka", _NoJars)
    with pytest.raises(StackError, match="Kafka jars missing"):
        stack.up()
    assert started[0] > 0  # PostgreSQL did start, and is gone again
    assert not runs(started[0], b"postgres")
    assert _postgres_pid(state) is None
    assert not (state / "stack.json").exists()
    capsys.readouterr()
    stack.down()
    assert "Nothing to stop." in capsys.readouterr().err


def test_down_stops_a_postgres_left_without_a_stack_file(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    postgres = Postgres(state / "postgres")
    postgres.start()  # as an `up` killed before it wrote stack.json leaves it
    pid = _postgres_pid(state)
    assert pid is not None
    assert runs(pid, b"postgres")
    try:
        stack.down()
    finally:
        postgres.stop()
    assert "stopped postgres" in capsys.readouterr().err
    assert not runs(pid, b"postgres")


@pytest.mark.skipif(os.geteuid() != 0, reason="only as root does PostgreSQL run as another user")
def test_up_as_root_names_the_directories_it_opens_to_postgres(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path.chmod(0o755)
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)  # the postgres user cannot reach a data directory under it, until `up` adds o+x
    postgres = Postgres(closed / "postgres")
    try:
        postgres.start()
    finally:
        postgres.stop()
    assert closed.stat().st_mode & 0o777 == 0o701
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "o+x" in line]
    assert str(closed) in line
    named = line.split(" so ")[0].removeprefix("added o+x to ").split(", ")
    assert str(tmp_path) not in named  # already open: not changed, not named
