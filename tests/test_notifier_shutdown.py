"""The notifier stopping (SIGTERM: uvicorn runs the app's shutdown) finishes the Slack post in hand, and FastStream's
per-message lines stay below INFO."""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from outrider.slack_local import LocalSlack
from outrider_common.topics import ENGAGEMENT_EVENTS
from outrider_notifier import store
from outrider_notifier.app import create_app
from outrider_notifier.reminders import Planned
from outrider_notifier.settings import NotifierSettings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def _settings(kafka: str, dsn: str, prefix: str, slack: LocalSlack) -> NotifierSettings:
    return NotifierSettings(kafka_bootstrap_servers=kafka, database_url=dsn, topic_prefix=prefix,
                            slack_token="xoxb-test", slack_api_url=slack.api_url, finding_group_s=0)  # fmt: skip


async def _stopped_during_a_post(kafka: str, dsn: str, prefix: str, slack: LocalSlack, due: int) -> None:
    """`due` reminders due now, claimed in one pass and posted one after the other; the notifier stops while Slack
    takes 2 s to answer the first post."""
    slack.delay_s = 2.0
    app = create_app(_settings(kafka, dsn, prefix, slack))
    async with app.router.lifespan_context(app):
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            at = datetime.now(UTC) + timedelta(seconds=1)  # all due together: one pass claims them all
            for n in range(1, due + 1):
                planned = Planned(f"stage_changed:{n}", "stage_changed", f"stage-{n}", at, {"to": f"stage {n}"})
                await store.schedule(pool, engagement_id=uuid4(), planned=planned)
            deadline = time.monotonic() + 30
            while not slack.requests:  # the first post is with Slack; any other is claimed, waiting its turn
                assert time.monotonic() < deadline, "the reminders were never posted"
                await asyncio.sleep(0.02)
        finally:
            await pool.close()


async def test_stopping_during_a_slow_post_finishes_it_and_records_it_sent(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, slack: LocalSlack
) -> None:
    await _stopped_during_a_post(kafka_bootstrap, database_dsn, topic_prefix, slack, due=1)
    conn = await asyncpg.connect(database_dsn)
    try:
        assert await conn.fetchval("SELECT status FROM reminders") == "sent"
    finally:
        await conn.close()
    assert len(slack.messages) == 1


async def test_stopping_hands_back_what_it_claimed_and_did_not_post(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, slack: LocalSlack
) -> None:
    await _stopped_during_a_post(kafka_bootstrap, database_dsn, topic_prefix, slack, due=2)
    conn = await asyncpg.connect(database_dsn)
    try:
        rows = await conn.fetch(
            "SELECT status, attempts - rate_limited AS counted, (SELECT array_agg(outcome ORDER BY id) FROM deliveries"
            " d WHERE d.reminder_id = r.id) AS log FROM reminders r ORDER BY status"
        )
    finally:
        await conn.close()
    # The one not posted is pending again at once (not left 'sending' for its claim to go stale, then logged as resent
    # after a crash), and its claim did not use up an attempt.
    assert [(r["status"], r["counted"], r["log"]) for r in rows] == [
        ("pending", 0, ["sending", "released"]),
        ("sent", 1, ["sending", "sent"]),
    ]
    assert len(slack.messages) == 1


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_faststream_logs_each_message_below_info(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, slack: LocalSlack, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(kafka_bootstrap, database_dsn, topic_prefix, slack)
    app = create_app(settings)
    access = logging.getLogger("faststream.access.kafka")
    records = _Records()

    async def handle_one(seen: Callable[[], bool]) -> None:
        await producer.send_and_wait(settings.topic(ENGAGEMENT_EVENTS), b"{}")  # not an event: dead-lettered
        deadline = time.monotonic() + 60
        while not seen():
            assert time.monotonic() < deadline, "the message was never handled"
            await asyncio.sleep(0.05)

    async with app.router.lifespan_context(app):
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            # FastStream sets its logger's level (INFO) on the first message; lowered after it, the second one's
            # lines are all seen, at the level they come at.
            await handle_one(lambda: "dead-lettered message" in caplog.text)
            access.addHandler(records)
            level = access.level
            access.setLevel(logging.DEBUG)
            try:
                await handle_one(lambda: any(r.getMessage() == "Processed" for r in records.records))
            finally:
                access.removeHandler(records)
                access.setLevel(level)
        finally:
            await producer.stop()
    per_message = [r for r in records.records if r.getMessage() in ("Received", "Processed")]
    assert {r.levelno for r in per_message} == {logging.DEBUG}
