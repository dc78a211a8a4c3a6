"""`python -m outrider_notifier`: run the notifier (consumer + ops endpoints)."""

import logging

import uvicorn

from outrider_common.settings import read_settings
from outrider_notifier.app import create_app
from outrider_notifier.settings import NotifierSettings

settings = read_settings(NotifierSettings)
app = create_app(settings)
logging.getLogger("outrider_notifier").info(
    "starting: PostgreSQL first, then Kafka at %s security_protocol=%s",
    settings.kafka_bootstrap_servers,
    settings.kafka_security_protocol,
)
uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")
