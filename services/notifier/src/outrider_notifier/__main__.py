"""`python -m outrider_notifier`: run the notifier (consumer + ops endpoints)."""

import uvicorn

from outrider_notifier.app import create_app
from outrider_notifier.settings import NotifierSettings

settings = NotifierSettings()
uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_level="warning")
