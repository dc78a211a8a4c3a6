"""`python -m outrider_analyzer`: run the analyzer (consumer + ops endpoints)."""

import uvicorn

from outrider_analyzer.app import create_app
from outrider_analyzer.memory import keep_freed_memory
from outrider_analyzer.settings import AnalyzerSettings
from outrider_common.settings import log_start, read_settings

settings = read_settings(AnalyzerSettings)
keep_freed_memory(settings.malloc_keep_mb)
app = create_app(settings)
log_start(settings, "analyzer")
uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")
