"""Engagement schemas."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from outrider_common.http import INT32_MAX
from outrider_tracker.playbook import service as playbooks

EngagementStatus = Literal["active", "paused", "closed"]


class EngagementCreate(BaseModel):
    """Fields to open an engagement."""

    name: str = Field(min_length=1, max_length=200, examples=["ACME GitLab 10k reference architecture"])
    customer: str = Field(min_length=1, max_length=200, examples=["ACME Corp"])
    playbook_id: str = Field("gitlab-reference-architecture", description="Playbook the engagement follows.")
    slack_channel: str | None = Field(
        None, min_length=1, max_length=80, description="Where reminders go (the notifier's default when unset)."
    )

    @field_validator("playbook_id")
    @classmethod
    def _known_playbook(cls, value: str) -> str:
        if playbooks.get(playbook_id=value) is None:
            raise ValueError(f"unknown playbook; one of {sorted(playbooks.get_all())}")
        return value


class EngagementUpdate(BaseModel):
    """Fields to change; `version` must be the one last read (409 when someone changed it since)."""

    version: int = Field(ge=1, le=INT32_MAX)
    name: str | None = Field(None, min_length=1, max_length=200)
    customer: str | None = Field(None, min_length=1, max_length=200)
    status: EngagementStatus | None = None
    slack_channel: str | None = Field(None, min_length=1, max_length=80)


class EngagementRead(BaseModel):
    """An engagement as the API returns it."""

    id: UUID
    name: str
    customer: str
    playbook_id: str
    stage: str
    stage_entered_at: datetime
    slack_channel: str | None
    status: EngagementStatus
    created_at: datetime
    updated_at: datetime
    version: int
