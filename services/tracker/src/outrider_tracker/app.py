"""The tracker service: every router, the database and the Kafka connection."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from fastapi import Depends, FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from outrider_common.db import Database
from outrider_common.http import check_broker, instrument_http, ops_router, refuse_invalid, refuse_nul
from outrider_common.kafka import broker_security, ensure_topics
from outrider_common.outbox import Relay
from outrider_common.tasks import supervise
from outrider_common.telemetry import setup_logging, setup_tracing
from outrider_common.topics import ENGAGEMENT_EVENTS
from outrider_tracker.auth import api as auth_api
from outrider_tracker.body import SizeLimit, document_limit
from outrider_tracker.engagement import api as engagement_api
from outrider_tracker.handoff import api as handoff_api
from outrider_tracker.issue import api as issue_api
from outrider_tracker.playbook import api as playbook_api
from outrider_tracker.portfolio import api as portfolio_api
from outrider_tracker.portfolio.service import export_gauges
from outrider_tracker.risk import api as risk_api
from outrider_tracker.settings import TrackerSettings
from outrider_tracker.stage import api as stage_api
from outrider_tracker.stats import api as stats_api
from outrider_tracker.token import api as token_api
from outrider_tracker.touchpoint import api as touchpoint_api

MIGRATIONS = Path(__file__).parent / "migrations"
KAFKA_RETRY_MAX_S = 30.0
log = logging.getLogger(__name__)


def create_app(settings: TrackerSettings | None = None) -> FastAPI:
    """Build the tracker ASGI app."""
    settings = settings or TrackerSettings()
    setup_logging(settings.log_level)
    db = Database(settings.database_url.get_secret_value(), MIGRATIONS)
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=broker_security(settings),
        client_id="outrider-tracker",
        enable_idempotence=True,
        log_level=logging.DEBUG,  # "Received"/"Processed" per message, below the services' INFO
        middlewares=(
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name="tracker"),
            KafkaTelemetryMiddleware(tracer_provider=setup_tracing("tracker")),
        ),
    )
    relay = Relay("tracker", settings, settings.topic, retention=settings.outbox_retention)

    async def connect_kafka() -> bool:
        """Create the events topic and start the broker; False (logged) when Kafka is away. A refusal (a topic the
        brokers will not create) is raised: waiting would not change it."""
        try:
            await ensure_topics(settings, [settings.topic(ENGAGEMENT_EVENTS)])
            await broker.start()
        except (KafkaConnectionError, KafkaTimeoutError, OSError, TimeoutError) as exc:
            await broker.stop()  # what a start cut short made (its producer) is closed, not left for the next try
            log.warning("kafka away, serving on with events held in the outbox; retrying error=%r", exc)
            return False
        return True

    async def keep_connecting() -> None:
        delay = 1.0
        while not await connect_kafka():
            await asyncio.sleep(delay)
            delay = min(delay * 2, KAFKA_RETRY_MAX_S)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.open()
        # Without Kafka the API still serves (its events wait in the outbox): connect in the background meanwhile.
        connected = await connect_kafka()
        background = [
            *([] if connected else [supervise(asyncio.create_task(keep_connecting()), "kafka connection")]),
            supervise(asyncio.create_task(relay.run(db.pool)), "outbox relay"),
            supervise(
                asyncio.create_task(
                    export_gauges(db.pool, settings.gauge_refresh_s, settings.overdue_grace, settings.stalled_after)
                ),
                "portfolio gauges",
            ),
        ]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await broker.stop()
            await db.close()

    app = FastAPI(title="Outrider tracker", version="0.1.0", lifespan=lifespan)
    refuse_nul(app)
    refuse_invalid(app)
    # Added after refuse_nul, so it runs before it: that check reads every body whole.
    app.add_middleware(SizeLimit, max_bytes=settings.max_body_bytes)
    instrument_http(app, "tracker")
    app.state.settings = settings
    app.state.db = db
    app.state.broker = broker
    app.state.outbox_wake = relay.wake
    for api in (engagement_api, stage_api, touchpoint_api, risk_api, handoff_api, issue_api, playbook_api,
                portfolio_api, stats_api, token_api):  # fmt: skip
        app.include_router(api.router, dependencies=[Depends(auth_api.authorize)], responses=auth_api.REFUSALS)
    app.include_router(auth_api.router)
    # Without Kafka the API still serves, its events wait in the outbox (alert OutriderOutboxBacklog): not a reason
    # to take the tracker out of service.
    app.include_router(ops_router({"postgres": db.ping}, reported={"kafka": lambda: check_broker(broker)}))
    document_limit(app, settings.max_body_bytes)
    return app
