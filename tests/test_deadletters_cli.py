"""`outrider dead-letters list` on dead letters read from Kafka (stood in for: reading them is tested in
tests/test_analyzer.py): a record replayed and dead-lettered again says which dead letter it was replayed from."""

import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from typer.testing import CliRunner

from outrider import deadletters, up
from outrider.cli import app
from outrider.deadletters import DeadLetter

runner = CliRunner()
AT = 1_714_557_600_000  # 2024-05-01 10:00:00 UTC, in Kafka's milliseconds


def letter(offset: int, headers: dict[str, str], partition: int = 0, at: int = AT) -> DeadLetter:
    encoded = [(k, v.encode()) for k, v in headers.items()]
    return DeadLetter(ConsumerRecord("logs.raw.dead", partition, offset, at, 0, b"k", b"12345", None, 1, 5, encoded))


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
        {"topic": "logs.raw.dead", "partition": 0, "offset": 0, "at": "2024-05-01T10:00:00+00:00",
         "source": "logs.raw/2/17", "reason": "bad value: cut", "bytes": 5, "replayed_from": None},
        {"topic": "logs.raw.dead", "partition": 0, "offset": 1, "at": "2024-05-01T10:00:00+00:00",
         "source": "logs.raw/1/40", "reason": "bad value: cut", "bytes": 5, "replayed_from": "logs.raw.dead/0/0"},
    ]  # fmt: skip


def test_the_table_has_a_replayed_from_column_when_one_was_replayed(listed: list[DeadLetter]) -> None:
    listed += [FIRST, AGAIN]
    result = runner.invoke(app, ["dead-letters", "list"])
    assert result.exit_code == 0, result.output
    (header,) = [cells(line) for line in result.output.splitlines() if "REPLAYED FROM" in line]
    column = header.index("REPLAYED FROM")
    (again,) = [cells(line) for line in result.output.splitlines() if "logs.raw/1/40" in line]
    assert again[column] == "logs.raw.dead/0/0"
    (first,) = [cells(line) for line in result.output.splitlines() if "logs.raw/2/17" in line]
    assert first[column] == ""


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.replace("┃", "│").split("│")]


def test_the_table_leaves_the_column_out_when_none_was_replayed(listed: list[DeadLetter]) -> None:
    listed += [FIRST]
    result = runner.invoke(app, ["dead-letters", "list"])
    assert result.exit_code == 0, result.output
    assert "1 dead letter" in result.output
    assert "REPLAYED FROM" not in result.output


def test_each_dead_letter_says_its_partition(listed: list[DeadLetter]) -> None:
    listed += [letter(7, {"dead-letter-source": "logs.raw/0/1"}, partition=2)]
    result = runner.invoke(app, ["dead-letters", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["partition"] == 2
    result = runner.invoke(app, ["dead-letters", "list"])
    assert result.exit_code == 0, result.output
    assert "TOPIC/PARTITION/OFFSET" in result.output
    (row,) = [line for line in result.output.splitlines() if "logs.raw/0/1" in line]
    assert "logs.raw.dead/2/7" in row  # as `replay` names a dead letter in dead-letter-replayed-from


def test_dead_letters_are_listed_oldest_first_across_partitions(listed: list[DeadLetter]) -> None:
    listed += [letter(5, {}, partition=1, at=AT + 3000), letter(9, {}, partition=0, at=AT + 1000),
               letter(4, {}, partition=1, at=AT + 1000), letter(2, {}, partition=0, at=AT + 2000)]  # fmt: skip
    # One partition after the other, as Kafka hands them out; `list` puts them in time order.
    result = runner.invoke(app, ["dead-letters", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["partition"], r["offset"]) for r in rows] == [(0, 9), (1, 4), (0, 2), (1, 5)]


def test_json_is_the_reason_as_it_is_not_emoji_or_markup(listed: list[DeadLetter]) -> None:
    reason = "bad value :x: [bold]cut[/bold] :thumbs_up:"
    listed += [letter(0, {"dead-letter-reason": reason})]
    result = runner.invoke(app, ["dead-letters", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reason"] == reason
    result = runner.invoke(app, ["dead-letters", "list"])
    assert result.exit_code == 0, result.output
    assert reason in result.output


def test_bootstrap_servers_that_are_not_host_port_are_a_usage_error() -> None:
    result = runner.invoke(app, ["dead-letters", "list", "--bootstrap", "127.0.0.1:notaport"], terminal_width=400)
    assert result.exit_code == 2, result.output
    error = " ".join(result.output.replace("│", " ").split())
    assert "Invalid value for '--bootstrap'" in error
    assert "'127.0.0.1:notaport' is not host:port[,host:port…]" in error


@pytest.fixture
def bootstrap_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The bootstrap servers each `list` connects to; no stack up (`up`'s state in an empty directory)."""
    used: list[str] = []

    async def read(kafka: Any, topics: list[str]) -> list[DeadLetter]:
        used.append(getattr(kafka, "kafka_bootstrap_servers", kafka))  # settings, or the servers themselves
        return []

    monkeypatch.setattr(deadletters, "_list", read)
    monkeypatch.setattr(up, "STATE", tmp_path)
    monkeypatch.delenv("OUTRIDER_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    return used


def test_the_default_kafka_is_the_one_up_started(bootstrap_used: list[str]) -> None:
    assert runner.invoke(app, ["dead-letters", "list"]).exit_code == 0
    up.Stack(29092, 15432, None, {}).save()  # `up` found 19092 taken and chose another port
    assert runner.invoke(app, ["dead-letters", "list"]).exit_code == 0
    assert runner.invoke(app, ["dead-letters", "list", "--bootstrap", "kafka:9092"]).exit_code == 0
    assert bootstrap_used == ["127.0.0.1:19092", "127.0.0.1:29092", "kafka:9092"]
