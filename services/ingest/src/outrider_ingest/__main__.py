"""`python -m outrider_ingest`: serve the ingest API."""

import uvicorn

from outrider_ingest.app import create_app
from outrider_ingest.settings import IngestSettings

settings = IngestSettings()
uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_level="warning")
