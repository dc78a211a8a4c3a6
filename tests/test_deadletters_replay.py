"""`outrider dead-letters replay` against a real broker: a dead letter sent without its value (too large for the
producer) is skipped and said so, the others go back to their topic."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from typer.testing import CliRunner

from outrider.cli import app
from outrider_common.topics import DEAD_LETTER_REASON, DEAD_LETTER_SOURCE, DEAD_LETTER_VALUE

pytestmark = pytest.mark.kafka


async def _put(bootstrap: str, topic: str, letters: list[tuple[bytes, list[tuple[str, bytes]]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value, headers in letters:
            await producer.send_and_wait(topic, value, key=b"e", headers=headers)
    finally:
        await producer.stop()


async def _values(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        values: list[bytes] = []
        async with asyncio.timeout(30):
            while len(values) < expected:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    values += [r.value or b"" for r in records]
        await asyncio.sleep(1)  # and nothing more arrives
        for records in (await consumer.getmany(timeout_ms=500)).values():
            values += [r.value or b"" for r in records]
        return values
    finally:
        await consumer.stop()


def test_a_dead_letter_without_its_value_is_skipped_and_the_others_replayed(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    reason = [(DEAD_LETTER_REASON, b"bad headers: engagement_id: no value")]
    source = [(DEAD_LETTER_SOURCE, f"{topic_prefix}logs.raw/0/7".encode())]
    asyncio.run(_put(kafka_bootstrap, f"{topic_prefix}logs.raw.dead", [
        (b'{"a":1}\n', [*reason, *source]),
        (b"", [*reason, *source, (DEAD_LETTER_VALUE, b"dropped (9437184 bytes): MessageSizeTooLargeError")]),
    ]))  # fmt: skip
    result = CliRunner().invoke(
        app, ["dead-letters", "replay", "logs.raw", "--bootstrap", kafka_bootstrap, "--topic-prefix", topic_prefix]
    )
    assert result.exit_code == 0, result.output
    assert f"replayed 1 to {topic_prefix}logs.raw" in result.output
    assert "skipped 1 without their value" in result.output
    assert asyncio.run(_values(kafka_bootstrap, f"{topic_prefix}logs.raw", 1)) == [b'{"a":1}\n']
