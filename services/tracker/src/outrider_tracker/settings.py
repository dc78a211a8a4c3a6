"""Settings of the tracker service."""

from datetime import timedelta

from pydantic import Field, SecretStr, field_validator

from outrider_common.settings import ServiceSettings


class TrackerSettings(ServiceSettings):
    """`OUTRIDER_*` environment variables read by the tracker."""

    http_port: int = Field(8003, description="Port of the tracker HTTP API.")
    gauge_refresh_s: float = Field(15.0, gt=0, description="How often the portfolio gauges are recomputed.")
    overdue_grace_s: float = Field(
        3_600,  # the notifier's default: overdue here when its overdue reminder goes out there
        ge=0,
        description="How long after a touchpoint it counts as overdue; give the notifier's the same value.",
    )
    stalled_days: float = Field(
        14,
        gt=0,
        description="An active engagement with no change (no entry in its audit trail) for this many days is stalled "
        "in the portfolio, whatever its stage's expected days.",
    )
    max_body_bytes: int = Field(
        1 << 20, gt=0, description="Largest request body accepted; a larger one is refused with 413, unread."
    )
    admin_token: SecretStr | None = Field(
        None,
        description="Bootstrap admin API token (use it to mint named tokens with POST /v1/api-tokens); "
        "without it only tokens already in the database are accepted.",
    )

    @field_validator("admin_token", mode="before")
    @classmethod
    def _stripped(cls, value: object) -> object:
        """Without the line break a Secret made from an `echo`ed or CRLF file ends with; blank is none."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return (value.strip() or None) if isinstance(value, str) else value

    @property
    def stalled_after(self) -> timedelta:
        """`stalled_days` as a duration."""
        return timedelta(days=self.stalled_days)

    @property
    def overdue_grace(self) -> timedelta:
        """`overdue_grace_s` as a duration."""
        return timedelta(seconds=self.overdue_grace_s)
