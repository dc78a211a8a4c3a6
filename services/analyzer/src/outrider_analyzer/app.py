"""The analyzer service: the `logs.raw` subscriber and the ops endpoints."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY

from outrider_analyzer.handlers import as_itself, dead_letterer, log_chunk_handler, readable_headers, rereader
from outrider_analyzer.observability import kafka_middlewares
from outrider_analyzer.pipeline import DRAIN_SECONDS, ConsumerLag, DrainOnRevoke, Flusher
from outrider_analyzer.settings import AnalyzerSettings
from outrider_common.db import Database
from outrider_common.http import check_broker, instrument_http, ops_router
from outrider_common.kafka import MAX_RECORD_BYTES, broker_security, ensure_topics
from outrider_common.logstats import BUCKET_SECONDS
from outrider_common.outbox import Relay
from outrider_common.tasks import supervise
from outrider_common.telemetry import setup_logging, setup_tracing
from outrider_common.topics import ANALYSIS_FINDINGS, LOGS_RAW

# The group waits this long for each member to rejoin a rebalance, the revoke's drain included; aiokafka's default is
# the session timeout (10 s), below the drain's bound, and a member dropped mid-drain rejoins: a rebalance storm.
REBALANCE_TIMEOUT_MS = int(3 * DRAIN_SECONDS * 1000)


def create_app(settings: AnalyzerSettings | None = None) -> FastAPI:
    """Build the analyzer ASGI app (the Kafka consumer runs in its lifespan)."""
    settings = settings or AnalyzerSettings()
    setup_logging(settings.log_level)
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=broker_security(settings),
        client_id="outrider-analyzer",
        enable_idempotence=True,
        log_level=logging.DEBUG,  # "Received"/"Processed" per batch, below the services' INFO
        # A dead letter is a record of ingest's with two headers more; one still over the limit goes without its
        # value (handlers.dead_letterer).
        max_request_size=MAX_RECORD_BYTES,
        middlewares=kafka_middlewares(REGISTRY, setup_tracing("analyzer")),
    )
    db = Database(settings.database_url.get_secret_value())
    relay = Relay("analyzer", settings, settings.topic, retention=settings.outbox_retention)
    flusher = Flusher(
        db,
        dead_letterer(broker, settings.dead_letter_topic(LOGS_RAW)),
        rereader(settings),
        bucket_seconds=BUCKET_SECONDS,
        limits=settings.findings,
        wake_relay=relay.wake,
        max_pending_bytes=settings.max_pending_mb << 20,
    )
    lag = ConsumerLag(lambda: subscriber.consumer)
    # MANUAL: offsets are committed by the flusher once PostgreSQL has the chunks (the default commits before
    # handling, which would lose them on a crash).
    subscriber = broker.subscriber(
        settings.topic(LOGS_RAW),
        group_id=settings.consumer_group,
        batch=True,
        max_records=settings.max_records,
        batch_timeout_ms=500,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        # ~30 zstd chunks a fetch. Larger responses only make asyncio's StreamReader grow its buffer copy by copy
        # (py-spy: feed_data was 22 % of the event loop at 8 MiB, 9 % at 2 MiB) and raise the peak RSS.
        max_partition_fetch_bytes=4 << 20,
        # aiokafka has one fetch in flight per broker and leaves partitions with unread records out of it: while a
        # busy partition's batch is handled, a fetch for the idle ones would sit the whole wait on the broker and
        # hold back the busy partition's next fetch (the Java default, 500 ms, cost a third of the throughput).
        fetch_max_wait_ms=50,
        # Kafka's per-batch CRC32C runs in software on the event loop (py-spy: 10 % of its samples; the analyzer
        # went from 2.02 to 1.71 CPU s/GB without it). Each value is a zstd frame whose content checksum the parse
        # threads verify (LogChunk.pack), which guards it from ingest on, and a damaged one is dead-lettered.
        check_crcs=False,
        rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
        listener=DrainOnRevoke(flusher, lag),
        parser=readable_headers,
        decoder=as_itself,
    )
    subscriber(log_chunk_handler(flusher, BUCKET_SECONDS))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.open()
        topics = [settings.topic(LOGS_RAW), settings.dead_letter_topic(LOGS_RAW), settings.topic(ANALYSIS_FINDINGS)]
        await ensure_topics(settings, topics)
        tasks = [supervise(asyncio.create_task(flusher.run()), "flusher"),
                 supervise(asyncio.create_task(relay.run(db.pool)), "outbox relay")]  # fmt: skip
        await broker.start()
        watching = supervise(asyncio.create_task(lag.run()), "consumer lag")
        # What start-up built (modules, FastAPI and pydantic schemas) lives as long as the process: frozen, the
        # collector stops walking it on every full collection (perf: gc_collect_main and its visitors were ~2 % of
        # the analyzer's samples at 500 MB/s).
        gc.freeze()
        try:
            yield
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            await broker.stop()  # waits for the batch in hand
            flusher.detach()  # the consumer is gone: write what is queued, the next owner re-reads its offsets
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10.0):
                    await flusher.drained()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks)
            await db.close()

    app = FastAPI(title="Outrider analyzer", version="0.1.0", lifespan=lifespan)
    instrument_http(app, "analyzer")
    app.state.settings = settings
    app.include_router(ops_router({"kafka": lambda: check_broker(broker), "postgres": db.ping}))
    return app
