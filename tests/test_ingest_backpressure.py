"""Ingest when Kafka is away or slow: 503 with Retry-After, nothing acknowledged that Kafka did not store, and no
more bytes held for Kafka than the upload's budget."""

import asyncio
import gzip
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.codec import zstd_decode

from outrider.devstack import Kafka
from outrider_common.topics import LOGS_RAW
from outrider_ingest.app import create_app
from outrider_ingest.settings import IngestSettings
from tests.stack import as_admin, open_engagement, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
LINE = b'{"controller":"A","action":"b","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:00Z"}\n'


def test_kafka_down_gives_503_and_a_retry_after_it_returns_is_counted_once(
    database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    kafka = Kafka(tmp_path / "kafka")  # a broker of this test's own, so it can be stopped
    kafka.start()
    try:
        with running_services(
            kafka=kafka.bootstrap_servers, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
            names=("tracker", "ingest", "analyzer"), settings={"OUTRIDER_PRODUCE_TIMEOUT_S": "3"},
        ) as svc:  # fmt: skip
            tracker, ingest = svc["tracker"].url, svc["ingest"].url
            engagement, auth = open_engagement(tracker)
            url = f"{ingest}/v1/engagements/{engagement}/logs"
            params = {"source": "h", "file_id": "f", "log_type": "production_json"}

            kafka.stop()
            down = httpx.post(url, params=params, content=LINE * 5, headers=auth, timeout=30)
            assert down.status_code == 503
            assert int(down.headers["retry-after"]) > 0
            assert "retry from offset 0" in down.json()["detail"]

            kafka.start()
            deadline = time.monotonic() + 60
            while (
                again := httpx.post(url, params=params, content=LINE * 5, headers=auth, timeout=30)
            ).status_code != 202:
                assert again.status_code == 503, again.text
                assert time.monotonic() < deadline, "ingest never recovered after Kafka came back"
            stats_url = f"{tracker}/v1/engagements/{engagement}/stats"
            while as_admin.get(stats_url).json()["total_count"] < 5:
                assert time.monotonic() < deadline, "the retried upload was never counted"
                time.sleep(0.2)
            time.sleep(1)  # a record produced before the 503 and counted again would show up now
            assert as_admin.get(stats_url).json()["total_count"] == 5
    finally:
        kafka.stop()


async def _kafka_lines(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    """Every line in `topic`'s records once `expected` have come, plus what arrives in the next 2 s (a record
    produced twice would)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    lines: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(lines) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                lines += (line for r in records for line in zstd_decode(r.value).splitlines())
        for records in (await consumer.getmany(timeout_ms=2000)).values():
            lines += (line for r in records for line in zstd_decode(r.value).splitlines())
    finally:
        await consumer.stop()
    return lines


async def test_an_upload_of_long_lines_holds_no_more_bytes_in_flight_than_its_budget(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    # A piece ends at its line's end, so a line near max_line_bytes is a piece that large: counted only by records,
    # an upload held max_in_flight of them, 4 MiB each by default, for as long as Kafka took to acknowledge.
    chunk, max_line, max_in_flight = 64 << 10, 256 << 10, 2
    budget = max(max_in_flight * chunk, max_line)  # a piece over max_in_flight * chunk_bytes goes alone
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=database_dsn, topic_prefix=topic_prefix,
        chunk_bytes=chunk, max_line_bytes=max_line, max_in_flight=max_in_flight,
    )  # fmt: skip
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker",)
    ) as svc:
        engagement, auth = open_engagement(svc["tracker"].url)
    app = create_app(settings)
    publish = app.state.broker.publish
    held = peak = records = most_records = 0

    async def slow_publish(value: bytes, *args: Any, **kwargs: Any) -> Any:
        """The real publish, whose acknowledgement comes late; counts the bytes handed over and not acknowledged."""
        nonlocal held, peak, records, most_records
        size = len(zstd_decode(value))
        held, records = held + size, records + 1
        peak, most_records = max(peak, held), max(most_records, records)
        try:
            result = await publish(value, *args, **kwargs)
            await asyncio.sleep(0.1)
            return result
        finally:
            held, records = held - size, records - 1

    app.state.broker.publish = slow_publish
    url = f"/v1/engagements/{engagement}/logs"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ingest", timeout=60) as client,
    ):
        # Lines just under max_line_bytes, some with a short one between: gzip shrinks them ~1000:1, so the wire
        # does not slow them down.
        long = [b'{"i":%d,"pad":"%s"}\n' % (i, b"x" * (max_line - 100 - i)) for i in range(12)]
        lines = [line for i, line in enumerate(long) for line in ((line, LINE) if i % 3 == 2 else (line,))]
        body = b"".join(lines)
        answer = await client.post(
            url, params={"source": "h", "file_id": "long"}, content=gzip.compress(body),
            headers={**auth, "Content-Encoding": "gzip"},
        )  # fmt: skip
        assert (answer.status_code, answer.json()["lines"], answer.json()["bytes"]) == (202, len(lines), len(body))
        assert peak <= budget, f"{peak} bytes in flight, over {budget}"

        # Lines of the usual size: the byte budget does not bite, max_in_flight records still go at once.
        peak = most_records = 0
        short = [LINE] * (8 * chunk // len(LINE))
        answer = await client.post(url, params={"source": "h", "file_id": "short"}, content=b"".join(short),
                                   headers=auth)  # fmt: skip
        assert (answer.status_code, answer.json()["lines"]) == (202, len(short)), answer.text
        assert most_records == max_in_flight
    stored = await _kafka_lines(kafka_bootstrap, settings.topic(LOGS_RAW), len(lines) + len(short))
    assert sorted(stored) == sorted(line.rstrip(b"\n") for line in lines + short)
