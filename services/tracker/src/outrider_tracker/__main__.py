"""`python -m outrider_tracker`: serve the tracker API."""

import logging

import uvicorn

from outrider_common.settings import read_settings
from outrider_tracker.app import create_app
from outrider_tracker.settings import TrackerSettings

settings = read_settings(TrackerSettings)
app = create_app(settings)
logging.getLogger("outrider_tracker").info(
    "starting: PostgreSQL first, then Kafka at %s security_protocol=%s",
    settings.kafka_bootstrap_servers,
    settings.kafka_security_protocol,
)
uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")
