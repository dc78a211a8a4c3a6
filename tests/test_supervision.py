"""A background task a service cannot work without that dies ends the process (exit 70), so it is restarted;
the portfolio gauges carry on past any failed pass."""

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import asyncpg
import pytest

from outrider.devstack import free_port
from outrider_common.tasks import EXIT_TASK_DIED
from outrider_tracker.portfolio import service

# The tracker with its gauges task made to fail on its first pass, as a bug or a dropped connection would.
TRACKER = """
import uvicorn
from outrider_tracker import app
from outrider_tracker.settings import TrackerSettings

async def broken(*args):
    raise RuntimeError("injected")

app.export_gauges = broken
settings = TrackerSettings()
uvicorn.run(app.create_app(settings), host="127.0.0.1", port=settings.http_port, log_level="warning")
"""


@pytest.mark.kafka
@pytest.mark.postgres
def test_the_tracker_exits_when_a_background_task_dies(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str
) -> None:
    env = {**os.environ, "OUTRIDER_DATABASE_URL": database_dsn, "OUTRIDER_HTTP_PORT": str(free_port()),
           "OUTRIDER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "OUTRIDER_TOPIC_PREFIX": topic_prefix,
           "OTEL_SDK_DISABLED": "true"}  # fmt: skip
    try:
        done = subprocess.run([sys.executable, "-c", TRACKER], env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the tracker kept running with its gauges task dead")
    assert done.returncode == EXIT_TASK_DIED, done.stderr
    assert "background task died, exiting task=portfolio gauges" in done.stderr
    assert "RuntimeError: injected" in done.stderr


async def test_the_portfolio_gauges_carry_on_past_an_unexpected_error(monkeypatch: pytest.MonkeyPatch) -> None:
    passes = 0

    async def dropped(*args: object, **kwargs: object) -> None:
        nonlocal passes
        passes += 1
        raise asyncpg.InterfaceError("connection is closed")

    monkeypatch.setattr(service, "get", dropped)
    gauges = asyncio.create_task(service.export_gauges(None, 0.01, timedelta(0), timedelta(0)))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(10):
            while passes < 3:
                await asyncio.sleep(0.01)
                assert not gauges.done(), gauges
    finally:
        gauges.cancel()
