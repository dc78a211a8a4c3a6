"""Records that must not stop the analyzer: header values FastStream cannot decode, dead letters over the producer's
size limit, and the consumer-lag gauge while PostgreSQL is away (against real Kafka and PostgreSQL)."""

import asyncio
import os
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from outrider.devstack import Service
from outrider_common.events import LogChunk
from tests.stack import open_engagement, running_services
from tests.test_analyzer import _read_topics, _sql, stats, wait_for_count

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

BROKER_LIMIT = 8 << 20  # message.max.bytes of the test broker (outrider.devstack), as large as ingest's records
Headers = list[tuple[str, bytes | None]]


def ten_lines(minute: int = 0) -> bytes:
    """Ten production_json requests."""
    return b"".join(
        b'{"controller":"Probe","action":"show","status":200,"duration_s":0.1,"time":"2024-05-01T10:%02d:%02dZ"}\n'
        % (minute, i)
        for i in range(10)
    )


def chunk(engagement: str, offset: int) -> LogChunk:
    return LogChunk(
        engagement_id=uuid.UUID(engagement), source="probe", file_id="f", offset=offset, lines=10,
        encoding="zstd", log_type="production_json",
    )  # fmt: skip


def good(engagement: str, offset: int, *extra: tuple[str, bytes | None]) -> tuple[bytes, Headers]:
    """A valid record of ten lines (value, headers), with `extra` headers after the contract's."""
    c = chunk(engagement, offset)
    return c.pack(ten_lines()), [(k, v.encode()) for k, v in c.to_headers().items()] + list(extra)


def replaced(record: tuple[bytes, Headers], name: str, value: bytes | None) -> tuple[bytes, Headers]:
    """`record` with the value of its header `name` replaced."""
    return record[0], [(k, value if k == name else v) for k, v in record[1]]


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, Headers]]) -> None:
    """`records` to partition 0, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=100, max_request_size=2 * BROKER_LIMIT)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, headers=headers, partition=0) for value, headers in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def offsets(bootstrap: str, topic: str) -> tuple[int | None, int]:
    """(the analyzer group's committed offset, the end offset) of partition 0."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="analyzer", enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return await consumer.committed(tp), (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


def wait_until_committed(bootstrap: str, topic: str, timeout: float = 30) -> int:
    """Wait until the analyzer has committed partition 0 up to its end; the end offset."""
    deadline = time.monotonic() + timeout
    while True:
        committed, end = asyncio.run(offsets(bootstrap, topic))
        if committed == end:
            return end
        assert time.monotonic() < deadline, f"committed {committed}, end {end}"
        time.sleep(0.3)


def wait_for_metric(service: Service, name: str, value: float, timeout: float = 10) -> None:
    """Wait until `name` reads `value` (the flusher counts just after it commits)."""
    deadline = time.monotonic() + timeout
    while (now := service.metric(name)) != value:
        assert time.monotonic() < deadline, f"{name} is {now}, not {value}"
        time.sleep(0.2)


def test_header_values_that_are_null_or_not_utf8_neither_drop_the_batch_nor_pass_for_valid(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    """aiokafka hands over header values that are None or any bytes: a record whose extra header is such is
    counted, one whose contract header is such is dead-lettered, and the records around them in the same batch
    are counted."""
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "analyzer"),
    ) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        engagement, _ = open_engagement(tracker)
        topic = f"{topic_prefix}logs.raw"
        asyncio.run(
            produce(kafka_bootstrap, topic, [
                good(engagement, 0, ("x-null", None)),  # counted: the analyzer does not read that header
                good(engagement, 1000),
                good(engagement, 2000, ("x-bin", b"\xff\xfe")),  # counted, as above
                replaced(good(engagement, 3000), "source", b"\xff\xfe"),  # dead: a contract header not UTF-8
                replaced(good(engagement, 4000), "engagement_id", None),  # dead: a contract header without a value
                good(engagement, 5000),
            ])
        )  # fmt: skip
        wait_for_count(tracker, engagement, 4 * 10, timeout=60)
        end = wait_until_committed(kafka_bootstrap, topic)
        dead = asyncio.run(_read_topics(kafka_bootstrap, topic_prefix, ("logs.raw.dead",)))["logs.raw.dead"]
        assert stats(tracker, engagement)["total_count"] == 40
        wait_for_metric(svc["analyzer"], 'outrider_analyzer_chunks_total{outcome="counted"}', 4)
        wait_for_metric(svc["analyzer"], 'outrider_analyzer_chunks_total{outcome="dead_letter"}', 2)
    assert end == 6
    by_source = {dict(d.headers)["dead-letter-source"].decode(): d for d in dead}
    assert sorted(by_source) == [f"{topic}/0/3", f"{topic}/0/4"]
    source_bad, id_null = by_source[f"{topic}/0/3"], by_source[f"{topic}/0/4"]
    assert dict(source_bad.headers)["dead-letter-reason"] == b"bad headers: source: not UTF-8"
    assert dict(id_null.headers)["dead-letter-reason"] == b"bad headers: engagement_id: no value"
    assert source_bad.value == good(engagement, 3000)[0]  # the record's value as it was, for a replay once fixed


def test_a_dead_letter_over_the_size_limit_goes_without_its_value_and_does_not_stall_its_partition(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    """A bad record of 2 MiB (over aiokafka's default 1 MiB limit) is dead-lettered whole; one that fits the broker
    only just, so that the reason and source headers take its dead letter over the limit, is dead-lettered without
    its value and says so; the good chunk after them is counted."""
    two_mib = os.urandom(2 << 20)
    # The largest record the broker takes: a record batch of 61 bytes of header, 22 bytes of record framing and
    # the one header below, and the value.
    near_limit = os.urandom(BROKER_LIMIT - 61 - 22 - 40)
    no_engagement: Headers = [("source", b"x")]
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "analyzer"),
    ) as svc:  # fmt: skip
        tracker = svc["tracker"].url
        engagement, _ = open_engagement(tracker)
        topic = f"{topic_prefix}logs.raw"
        asyncio.run(
            produce(
                kafka_bootstrap, topic,
                [(two_mib, no_engagement), (near_limit, no_engagement), good(engagement, 0)],
            )
        )  # fmt: skip
        wait_for_count(tracker, engagement, 10, timeout=60)
        assert wait_until_committed(kafka_bootstrap, topic) == 3
        dead = asyncio.run(_read_topics(kafka_bootstrap, topic_prefix, ("logs.raw.dead",)))["logs.raw.dead"]
        wait_for_metric(svc["analyzer"], 'outrider_analyzer_chunks_total{outcome="dead_letter"}', 2)
    whole, cut = sorted(dead, key=lambda d: dict(d.headers)["dead-letter-source"])
    assert dict(whole.headers)["dead-letter-source"].decode() == f"{topic}/0/0"
    assert whole.value == two_mib
    assert "dead-letter-value" not in dict(whole.headers)
    headers = {k: v.decode() for k, v in cut.headers}
    assert headers["dead-letter-source"] == f"{topic}/0/1"
    assert cut.value == b""
    assert headers["dead-letter-reason"].startswith("bad headers: engagement_id: Field required")
    assert headers["dead-letter-value"].startswith(f"dropped ({len(near_limit)} bytes): ")
    assert "MessageSizeTooLargeError" in headers["dead-letter-value"]
    assert headers["source"] == "x"


def lag(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics").text
    pattern = r'^outrider_analyzer_consumer_lag_records\{partition="(\d+)"\} (\S+)$'
    return {p: float(v) for p, v in re.findall(pattern, text, re.M)}


def wait_for_lag(url: str, partition: str, value: float, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (shown := lag(url).get(partition)) != value:
        assert time.monotonic() < deadline, f"lag of partition {partition} is {shown}, not {value}"
        time.sleep(0.3)


def test_consumer_lag_grows_while_postgresql_refuses_the_writes(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    """The gauge follows the records not committed yet even when no flush lands, and falls back once they do."""
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "analyzer"),
    ) as svc:  # fmt: skip
        tracker, analyzer = svc["tracker"].url, svc["analyzer"].url
        engagement, _ = open_engagement(tracker)
        topic = f"{topic_prefix}logs.raw"
        asyncio.run(produce(kafka_bootstrap, topic, [good(engagement, 0)]))
        wait_for_count(tracker, engagement, 10)
        wait_until_committed(kafka_bootstrap, topic)
        wait_for_lag(analyzer, "0", 0)
        asyncio.run(_sql(database_dsn, "ALTER TABLE log_chunks RENAME TO log_chunks_away"))
        try:
            asyncio.run(produce(kafka_bootstrap, topic, [good(engagement, 1000 * (i + 1)) for i in range(20)]))
            deadline = time.monotonic() + 30
            while svc["analyzer"].metric("outrider_analyzer_flush_failures_total") < 1:
                assert time.monotonic() < deadline, "the analyzer never tried to write the 20 records"
                time.sleep(0.3)
            wait_for_lag(analyzer, "0", 20)  # 20 records written after the committed offset, none committed since
        finally:
            asyncio.run(_sql(database_dsn, "ALTER TABLE log_chunks_away RENAME TO log_chunks"))
        wait_for_count(tracker, engagement, 10 + 20 * 10)
        wait_for_lag(analyzer, "0", 0)
