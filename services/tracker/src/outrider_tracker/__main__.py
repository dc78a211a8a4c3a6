"""`python -m outrider_tracker`: serve the tracker API."""

import uvicorn

from outrider_common.settings import log_start, read_settings
from outrider_tracker.app import create_app
from outrider_tracker.settings import TrackerSettings

settings = read_settings(TrackerSettings)
app = create_app(settings)
log_start(settings, "tracker")
uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")
