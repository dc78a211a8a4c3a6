"""Settings of the notifier service."""

from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from outrider_common.settings import ServiceSettings
from outrider_notifier.reminders import quiet_hour


class NotifierSettings(ServiceSettings):
    """`OUTRIDER_*` environment variables read by the notifier."""

    http_port: int = Field(8004, description="Port of the notifier's ops endpoints.")
    consumer_group: str = Field("notifier", description="Kafka consumer group shared by notifier replicas.")
    slack_token: SecretStr = Field(SecretStr(""), description="Slack bot token (chat:write).")
    slack_api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL (tests use a local one).")
    slack_timeout_s: int = Field(
        10, ge=1, description="Seconds to wait for Slack's answer; a post that times out may have been posted."
    )
    slack_webhook_url: SecretStr = Field(
        SecretStr(""), description="An incoming-webhook URL; when set it is used instead of the bot token."
    )
    digest_hour_utc: int | None = Field(
        None,
        ge=0,
        le=23,
        description="When set, routine reminders go out as one daily message per channel then (an hour outside"
        " quiet_hours_utc).",
    )
    finding_group_s: float = Field(
        300,
        ge=0,
        description="An engagement's first finding is posted at once; those after it wait until this long after its"
        " last finding message and go out together, in one message (0: each finding in a message of its own).",
    )
    default_channel: str = Field("#outrider", description="Channel for engagements without one of their own.")
    engagement_url: str = Field(
        "",
        description="Page behind each message's 'Engagement' button, '{engagement_id}' filled in: one a browser can"
        " open, e.g. Grafana's https://grafana.example.com/d/outrider-customer-logs/?var-engagement={engagement_id}."
        " Empty: no button, the message names `outrider engagements status <id>` (the tracker's API needs a token).",
    )
    touchpoint_lead_s: float | None = Field(
        None, ge=0, description="Override of how long before a touchpoint its reminder goes out (else the playbook's)."
    )
    overdue_grace_s: float = Field(3_600, ge=0, description="How long after a touchpoint it counts as overdue.")
    dispatch_interval_s: float = Field(1.0, gt=0, description="How often due reminders are looked for.")
    max_attempts: int = Field(
        8, ge=1, description="Delivery attempts before a reminder is marked failed (a 429 waited out is none)."
    )
    stale_sending_s: float = Field(
        120,
        gt=0,
        description="A reminder left 'sending' this long (its notifier died) is sent again; keep it above three"
        " Slack timeouts, the longest a post can take with slack_sdk's quick retries.",
    )
    quiet_hours_utc: tuple[int, int] | None = Field(
        None, description="[start, end) hours (UTC) in which nothing is posted, e.g. [22, 7]; due reminders wait."
    )

    @field_validator("quiet_hours_utc")
    @classmethod
    def _quiet_hours_are_hours(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        # An hour out of range would quietly mute the wrong hours ([25, 1]: only 0-1) or all of them ([-3, 30]).
        if value is not None and not (0 <= value[0] <= 23 and 0 <= value[1] <= 24):
            raise ValueError(f"{list(value)} is not [start, end) with start 0-23 and end 0-24, e.g. [22, 7]")
        return value

    @model_validator(mode="after")
    def _digest_outside_quiet_hours(self) -> Self:
        # Nothing is posted in quiet hours, and a day's digest goes out only from its hour to midnight: one whose hour
        # is quiet goes out late, or (quiet until midnight, as 23 in [22, 7]) never.
        if self.digest_hour_utc is not None and quiet_hour(self.digest_hour_utc, self.quiet_hours_utc):
            raise ValueError(
                f"digest_hour_utc {self.digest_hour_utc} is inside quiet_hours_utc {list(self.quiet_hours_utc or ())}"
                " (nothing is posted then, so the digest would go out late or never): pick an hour outside them"
            )
        return self
