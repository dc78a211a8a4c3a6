"""The notifier service: subscribers that store reminders, the dispatcher that posts them, ops endpoints."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from outrider_common.db import Database
from outrider_common.http import check_broker, instrument_http, ops_router
from outrider_common.kafka import broker_security, ensure_topics
from outrider_common.tasks import supervise
from outrider_common.telemetry import setup_logging, setup_tracing
from outrider_common.topics import ANALYSIS_FINDINGS, ENGAGEMENT_EVENTS
from outrider_notifier.dispatch import Dispatcher
from outrider_notifier.handlers import DeadLetters, on_engagement_event, on_finding
from outrider_notifier.settings import NotifierSettings
from outrider_notifier.slack import SlackWebApi, SlackWebhook

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    """Build the notifier ASGI app (consumers and the dispatcher run in its lifespan)."""
    settings = settings or NotifierSettings()
    setup_logging(settings.log_level)
    db = Database(settings.database_url.get_secret_value(), MIGRATIONS)
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=broker_security(settings),
        client_id="outrider-notifier",
        log_level=logging.DEBUG,  # "Received"/"Processed" per message, below the services' INFO
        middlewares=(
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name="notifier"),
            KafkaTelemetryMiddleware(tracer_provider=setup_tracing("notifier")),
        ),
    )
    consumed = (ENGAGEMENT_EVENTS, ANALYSIS_FINDINGS)
    broker.add_middleware(
        DeadLetters(broker, {settings.topic(t): (t, settings.dead_letter_topic(t)) for t in consumed})
    )
    # NACK_ON_ERROR: an event whose reminders could not be stored (PostgreSQL away) is read again, never skipped; one
    # that fails on every read is dead-lettered by DeadLetters and acknowledged.
    for topic, handler in ((ENGAGEMENT_EVENTS, on_engagement_event), (ANALYSIS_FINDINGS, on_finding)):
        broker.subscriber(
            settings.topic(topic),
            group_id=settings.consumer_group,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
        )(handler)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.open()
        await ensure_topics(
            settings,
            [n for t in consumed for n in (settings.topic(t), settings.dead_letter_topic(t))],
        )
        webhook = settings.slack_webhook_url.get_secret_value()
        sender = SlackWebhook(webhook) if webhook else SlackWebApi(settings.slack_token.get_secret_value(),
                                                                    settings.slack_api_url,
                                                                    timeout_s=settings.slack_timeout_s)  # fmt: skip
        dispatcher = Dispatcher(db.pool, sender, settings)
        broker.context.set_global("pool", db.pool)
        broker.context.set_global("settings", settings)
        broker.context.set_global("wake_dispatcher", dispatcher.wake)
        await broker.start()
        dispatching = supervise(asyncio.create_task(dispatcher.run()), "dispatcher")
        try:
            yield
        finally:
            # The post in hand is finished, not cut off (it would stay "sending" and be posted again after
            # stale_sending_s): bounded by its three tries (slack_sdk retries a 5xx or a refused connection twice).
            dispatcher.stop()
            await broker.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dispatching, 3 * settings.slack_timeout_s)  # cancelled when it times out
            await db.close()

    app = FastAPI(title="Outrider notifier", version="0.1.0", lifespan=lifespan)
    instrument_http(app, "notifier")
    app.state.settings = settings
    app.include_router(ops_router({"kafka": lambda: check_broker(broker), "postgres": db.ping}))
    return app
