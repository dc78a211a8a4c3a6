"""The tracker's outbox keeps every event while Kafka is down and publishes them, in order, once it is back."""

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from outrider.devstack import Kafka
from tests.stack import as_admin, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def read_events(bootstrap: str, topic: str, want: int) -> list[dict]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    events: list[dict] = []
    try:
        deadline = time.monotonic() + 60
        while len(events) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                events += [json.loads(r.value) for r in records]
    finally:
        await consumer.stop()
    return events


def test_events_recorded_during_an_outage_are_published_after_it(
    database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    kafka = Kafka(tmp_path / "kafka")  # this test's own broker, so it can be stopped
    kafka.start()
    try:
        with running_services(
            kafka=kafka.bootstrap_servers, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
            names=("tracker",),
        ) as svc:  # fmt: skip
            tracker = svc["tracker"].url
            engagement = as_admin.post(f"{tracker}/v1/engagements", json={"name": "o", "customer": "c"}).json()["id"]
            kafka.stop()
            for reason in ("one", "two", "three"):  # the API keeps working: the events wait in PostgreSQL
                moved = as_admin.post(f"{tracker}/v1/engagements/{engagement}/advance",
                                   json={"force": True, "reason": reason}, timeout=30)  # fmt: skip
                assert moved.status_code in (200, 409), moved.text
            kafka.start()
            events = asyncio.run(read_events(kafka.bootstrap_servers, f"{topic_prefix}engagement.events", 4))
    finally:
        kafka.stop()
    # At least once: a publish whose acknowledgement was lost may repeat; consumers dedupe by event id.
    events = list({e["event_id"]: e for e in events}.values())
    assert [e["type"] for e in events] == ["engagement.created", "stage.advanced", "stage.advanced", "stage.advanced"]
    assert [e["data"]["to"] for e in events[1:]] == ["test_cycle", "recommendation", "rollout_monitoring"]
