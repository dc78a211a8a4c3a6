"""`outrider dead-letters list` on dead letters read from Kafka (stood in for: reading them is tested in
tests/test_analyzer.py): a record replayed and dead-lettered again says which dead letter it was replayed from."""

import json

import pytest
from aiokafka import ConsumerRecord
from typer.testing import CliRunner

from outrider import deadletters
from outrider.cli import app
from outrider.deadletters import DeadLetter

runner = CliRunner()
AT = 1_714_557_600_000  # 2024-05-01 10:00:00 UTC, in Kafka's milliseconds


def letter(offset: int, headers: dict[str, str]) -> DeadLetter:
    encoded = [(k, v.encode()) for k, v in headers.items()]
    return DeadLetter(ConsumerRecord("logs.raw.dead", 0, offset, AT, 0, b"k", b"12345", None, 1, 5, encoded))


FIRST = letter(0, {"dead-letter-reason": "bad value: cut", "dead-letter-source": "logs.raw/2/17"})
AGAIN = letter(1, {"engagement_id": "e-1", "dead-letter-replayed-from": "logs.raw.dead/0/0",
                   "dead-letter-reason": "bad value: cut", "dead-letter-source": "logs.raw/1/40"})  # fmt: skip


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> list[DeadLetter]:
    """The dead letters `list` reads (set by each test)."""
    letters: list[DeadLetter] = []

    async def read(bootstrap: str, topics: list[str]) -> list[DeadLetter]:
        return letters

    monkeypatch.setattr(deadletters, "_list", read)
    return letters


def test_json_names_the_dead_letter_a_record_was_replayed_from(listed: list[DeadLetter]) -> None:
    listed += [FIRST, AGAIN]
    result = runner.invoke(app, ["dead-letters", "list", "logs.raw", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows == [
        {"topic": "logs.raw.dead", "offset": 0, "at": "2024-05-01T10:00:00+00:00", "source": "logs.raw/2/17",
         "reason": "bad value: cut", "bytes": 5, "replayed_from": None},
        {"topic": "logs.raw.dead", "offset": 1, "at": "2024-05-01T10:00:00+00:00", "source": "logs.raw/1/40",
         "reason": "bad value: cut", "bytes": 5, "replayed_from": "logs.raw.dead/0/0"},
    ]  # fmt: skip


def test_the_table_has_a_replayed_from_column_when_one_was_replayed(listed: list[DeadLetter]) -> None:
    listed += [FIRST, AGAIN]
    result = runner.invoke(app, ["dead-letters", "list"])
    assert result.exit_code == 0, result.output
    assert "REPLAYED FROM" in result.output
    (again,) = [line for line in result.output.splitlines() if "logs.raw/1/40" in line]
    assert "logs.raw.dead/0/0" in again
    (first,) = [line for line in result.output.splitlines() if "logs.raw/2/17" in line]
    assert "logs.raw.dead/0/0" not in first


def test_the_table_leaves_the_column_out_when_none_was_replayed(listed: list[DeadLetter]) -> None:
    listed += [FIRST]
    result = runner.invoke(app, ["dead-letters", "list"])
    assert result.exit_code == 0, result.output
    assert "1 dead letter" in result.output
    assert "REPLAYED FROM" not in result.output
