"""`python -m outrider_tracker`: serve the tracker API."""

import uvicorn

from outrider_tracker.app import create_app
from outrider_tracker.settings import TrackerSettings

settings = TrackerSettings()
uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_level="warning")
