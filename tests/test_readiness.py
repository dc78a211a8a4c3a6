"""/readyz gates on what a service cannot serve without, and reports the rest."""

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
