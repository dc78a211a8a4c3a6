"""The notifier service: the `engagement.events` subscriber and the ops endpoints."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from outrider_common.db import Database
from outrider_common.http import check_broker, instrument_http, ops_router
from outrider_common.kafka import ensure_topics
from outrider_common.telemetry import setup_logging, setup_tracing
from outrider_common.topics import ENGAGEMENT_EVENTS
from outrider_notifier.handlers import on_engagement_event
from outrider_notifier.settings import NotifierSettings


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    """Build the notifier ASGI app (the Kafka consumer runs in its lifespan)."""
    settings = settings or NotifierSettings()
    setup_logging(settings.log_level)
    db = Database(settings.database_url.get_secret_value())
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id="outrider-notifier",
        middlewares=(
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name="notifier"),
            KafkaTelemetryMiddleware(tracer_provider=setup_tracing("notifier")),
        ),
    )
    # NACK_ON_ERROR: a failed event is re-read, never skipped (the default commits before handling).
    broker.subscriber(
        settings.topic(ENGAGEMENT_EVENTS),
        group_id=settings.consumer_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )(on_engagement_event)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.open()
        await ensure_topics(settings.kafka_bootstrap_servers, [settings.topic(ENGAGEMENT_EVENTS)])
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await db.close()

    app = FastAPI(title="Outrider notifier", version="0.1.0", lifespan=lifespan)
    instrument_http(app, "notifier")
    app.state.settings = settings
    app.include_router(ops_router({"kafka": lambda: check_broker(broker), "postgres": db.ping}))
    return app
