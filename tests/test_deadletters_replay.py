"""`outrider dead-letters replay` against a real broker: a dead letter sent without its value (too large for the
producer, or gone from Kafka when PostgreSQL refused its chunk) is skipped and said so, the others go back to their
topic."""

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream.kafka import KafkaBroker
from typer.testing import CliRunner

from outrider.cli import app
from outrider_analyzer.findings import Thresholds
from outrider_analyzer.handlers import dead_letterer
from outrider_analyzer.pipeline import Flusher
from outrider_common.db import Database
from outrider_common.topics import DEAD_LETTER_REASON, DEAD_LETTER_SOURCE, DEAD_LETTER_VALUE
from tests.test_analyzer_flush_retry import flush_lot, handled

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


@pytest.mark.postgres
async def test_a_chunk_refused_by_postgresql_once_its_value_left_kafka_is_skipped_not_replayed(
    kafka_bootstrap: str, topic_prefix: str, database_dsn: str
) -> None:
    # Its dead letter has an empty value: replayed, it would only be dead-lettered again, as "not zstd".
    db = Database(database_dsn)
    await db.open()
    conn = await asyncpg.connect(database_dsn)
    broker = KafkaBroker(kafka_bootstrap)
    await broker.connect()
    try:
        await conn.execute("ALTER TABLE log_stats ADD CONSTRAINT no_poison CHECK (key <> 'Poison#show') NOT VALID")

        async def gone(tp: TopicPartition, offset: int) -> None:
            return None  # retention removed the record before PostgreSQL refused its chunk

        flusher = Flusher(
            db, dead_letterer(broker, f"{topic_prefix}logs.raw.dead"), gone, bucket_seconds=60, limits=Thresholds(),
            wake_relay=asyncio.Event(), max_pending_bytes=1 << 20, retry_max_seconds=0.1,
        )  # fmt: skip
        await flush_lot(flusher, [handled(uuid.uuid4(), 0, "Poison")])
    finally:
        await broker.stop()
        await conn.close()
        await db.close()
    args = ["dead-letters", "replay", "logs.raw", "--bootstrap", kafka_bootstrap, "--topic-prefix", topic_prefix]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    assert "skipped 1 without their value" in result.output
    assert "replayed" not in result.output
