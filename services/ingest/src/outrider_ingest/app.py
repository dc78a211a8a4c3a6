"""The ingest service: every router, the Kafka producer, and the ops endpoints."""

import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from outrider_common.db import Database
from outrider_common.http import check_broker, instrument_http, ops_router
from outrider_common.kafka import MAX_RECORD_BYTES, broker_security, ensure_topics
from outrider_common.telemetry import setup_logging, setup_tracing
from outrider_common.topics import LOGS_RAW
from outrider_ingest import api
from outrider_ingest.settings import IngestSettings


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    """Build the ingest ASGI app."""
    settings = settings or IngestSettings()
    setup_logging(settings.log_level)
    db = Database(settings.database_url.get_secret_value())
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=broker_security(settings),
        client_id="outrider-ingest",
        # aiokafka's defaults (acks=1, no idempotence, no linger) can lose or duplicate records on retry.
        enable_idempotence=True,
        acks="all",
        compression_type=None,  # values are zstd already (LogChunk.pack), compressed in worker threads
        linger_ms=5,
        max_batch_size=1 << 20,
        max_request_size=MAX_RECORD_BYTES,
        log_level=logging.DEBUG,  # FastStream's per-message lines, below the services' INFO
        middlewares=(
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name="ingest"),
            KafkaTelemetryMiddleware(tracer_provider=setup_tracing("ingest")),
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.open()
        await ensure_topics(settings, [settings.topic(LOGS_RAW)])
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await db.close()

    app = FastAPI(title="Outrider ingest", version="0.1.0", lifespan=lifespan)
    instrument_http(app, "ingest")
    app.state.settings = settings
    app.state.broker = broker
    app.state.db = db
    app.state.uploads = 0  # taken now, against settings.max_uploads
    app.state.uploads_of = Counter[UUID]()  # taken now per engagement, against settings.uploads_per_engagement
    app.include_router(api.router)
    app.include_router(ops_router({"kafka": lambda: check_broker(broker), "postgres": db.ping}))
    return app
