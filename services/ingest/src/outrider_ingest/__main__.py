"""`python -m outrider_ingest`: serve the ingest API."""

import uvicorn

from outrider_common.settings import log_start, read_settings
from outrider_ingest.app import create_app
from outrider_ingest.settings import IngestSettings

settings = read_settings(IngestSettings)
app = create_app(settings)
log_start(settings, "ingest")
uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")
