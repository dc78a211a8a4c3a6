"""`python -m outrider_ingest`: serve the ingest API."""

import logging

import uvicorn

from outrider_common.settings import read_settings
from outrider_ingest.app import create_app
from outrider_ingest.settings import IngestSettings

settings = read_settings(IngestSettings)
app = create_app(settings)
logging.getLogger("outrider_ingest").info(
    "starting: PostgreSQL first, then Kafka at %s security_protocol=%s",
    settings.kafka_bootstrap_servers,
    settings.kafka_security_protocol,
)
uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")
