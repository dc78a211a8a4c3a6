"""Settings of the tracker service."""

from outrider_common.settings import ServiceSettings
from pydantic import Field


class TrackerSettings(ServiceSettings):
    """`OUTRIDER_*` environment variables read by the tracker."""

    http_port: int = Field(8003, description="Port of the tracker HTTP API.")
