"""`python -m outrider_notifier`: run the notifier (consumer + ops endpoints)."""

import uvicorn

from outrider_common.settings import log_start, read_settings
from outrider_notifier.app import create_app
from outrider_notifier.settings import NotifierSettings

settings = read_settings(NotifierSettings)
app = create_app(settings)
log_start(settings, "notifier")
uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")
