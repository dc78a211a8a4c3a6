"""Settings of the tracker service."""

from pydantic import Field

from outrider_common.settings import ServiceSettings


class TrackerSettings(ServiceSettings):
    """`OUTRIDER_*` environment variables read by the tracker."""

    http_port: int = Field(8003, description="Port of the tracker HTTP API.")
    gauge_refresh_s: float = Field(15.0, gt=0, description="How often the portfolio gauges are recomputed.")
