"""/readyz gates on what a service cannot serve without, and reports the rest."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from outrider_common.http import ops_router


async def _fine() -> None:
    return None


async def _away() -> None:
    raise ConnectionError("broker not reachable")


async def _readyz(app: FastAPI) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get("/readyz")


def _app(
    checks: dict[str, Callable[[], Awaitable[None]]], reported: dict[str, Callable[[], Awaitable[None]]]
) -> FastAPI:
    app = FastAPI()
    app.include_router(ops_router(checks, reported=reported))
    return app


async def test_a_reported_dependency_away_is_shown_but_keeps_the_service_ready() -> None:
    # The tracker's shape: PostgreSQL gates, Kafka (the outbox waits for it) is only reported.
    answer = await _readyz(_app({"postgres": _fine}, {"kafka": _away}))
    assert answer.status_code == 200
    assert answer.json() == {
        "ready": True,
        "checks": {"postgres": "ok", "kafka": "ConnectionError: broker not reachable"},
    }


async def test_a_gating_dependency_away_makes_the_service_not_ready() -> None:
    answer = await _readyz(_app({"postgres": _away}, {"kafka": _fine}))
    assert answer.status_code == 503
    assert answer.json()["ready"] is False


@pytest.mark.kafka
@pytest.mark.postgres
async def test_the_tracker_stays_ready_while_kafka_is_away(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outrider_tracker import app as tracker_app
    from outrider_tracker.settings import TrackerSettings

    settings = TrackerSettings(kafka_bootstrap_servers=kafka_bootstrap, database_url=database_dsn,
                               topic_prefix=topic_prefix)  # fmt: skip
    app = tracker_app.create_app(settings)
    async with app.router.lifespan_context(app):
        assert (await _readyz(app)).json() == {"ready": True, "checks": {"postgres": "ok", "kafka": "ok"}}
        monkeypatch.setattr(tracker_app, "check_broker", lambda broker: _away())  # the broker stops answering
        answer = await _readyz(app)
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"]["kafka"] == "ConnectionError: broker not reachable"


async def _forward(to_host: str, to_port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one connection both ways to `to_host:to_port` (Kafka appearing on the tracker's configured address)."""
    up_reader, up_writer = await asyncio.open_connection(to_host, to_port)

    async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()

    await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


@pytest.mark.kafka
@pytest.mark.postgres
async def test_the_tracker_starts_and_serves_without_kafka_and_connects_once_it_appears(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str
) -> None:
    from outrider.devstack import free_port
    from outrider_tracker import app as tracker_app
    from outrider_tracker.settings import TrackerSettings
    from tests.stack import ADMIN_TOKEN

    port = free_port()  # nothing listens here yet: Kafka is away
    settings = TrackerSettings(kafka_bootstrap_servers=f"127.0.0.1:{port}", database_url=database_dsn,
                               topic_prefix=topic_prefix, admin_token=ADMIN_TOKEN)  # fmt: skip
    app = tracker_app.create_app(settings)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        created = await client.post("/v1/engagements", json={"name": "n", "customer": "c"}, headers=auth)
        assert created.status_code == 201, created.text
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["kafka"] != "ok"

        host, kafka_port = kafka_bootstrap.rsplit(":", 1)
        server = await asyncio.start_server(lambda r, w: _forward(host, int(kafka_port), r, w), "127.0.0.1", port)
        async with server:
            deadline = time.monotonic() + 60
            while (await client.get("/readyz")).json()["checks"]["kafka"] != "ok":
                assert time.monotonic() < deadline, "the tracker never connected to Kafka once it appeared"
                await asyncio.sleep(0.2)
