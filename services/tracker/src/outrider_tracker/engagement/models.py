"""Engagement schemas."""

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, HttpUrl, WithJsonSchema, field_validator

from outrider_common.http import INT32_MAX
from outrider_tracker.body import Body
from outrider_tracker.patch import not_null
from outrider_tracker.playbook import service as playbooks

EngagementStatus = Literal["active", "paused", "closed"]
Role = Literal[
    "solutions_architect", "technical_account_manager", "implementation_engineer", "project_manager",
    "customer_success_manager", "customer_engineer", "account_executive", "technical_advisor",
]  # fmt: skip
LinkKind = Literal["crm", "project_plan", "technical_design", "other"]
Destination = Literal["on_prem", "gcp", "aws", "azure", "other"]


def known_playbook(value: str) -> str:
    """Refuse a playbook id no playbook has (in a filter it could only ever match nothing)."""
    if playbooks.get(playbook_id=value) is None:
        raise ValueError(f"unknown playbook {value!r}; one of {sorted(playbooks.get_all())}")
    return value


def known_stage(value: str) -> str:
    """Refuse a stage id no playbook has."""
    if value not in playbooks.stage_ids():
        raise ValueError(f"unknown stage {value!r}; one of {playbooks.stage_ids()}")
    return value


# Playbooks are data files, so their ids are checked when a value arrives; the schema still lists them.
PlaybookId = Annotated[
    str, AfterValidator(known_playbook), WithJsonSchema({"type": "string", "enum": sorted(playbooks.get_all())})
]
StageId = Annotated[str, AfterValidator(known_stage), WithJsonSchema({"type": "string", "enum": playbooks.stage_ids()})]


class EngagementDetails(BaseModel):
    """Owners, links, size and target: optional, editable later."""

    owners: dict[Role, str] = Field(
        default_factory=dict, description="Owner per role: a Slack user id (U…) to be mentioned, or a name.",
        examples=[{"solutions_architect": "U024BE7LH", "technical_advisor": "Ana Lima"}],
    )  # fmt: skip
    links: dict[LinkKind, HttpUrl] = Field(default_factory=dict)
    current_users: int | None = Field(None, ge=0, le=INT32_MAX)
    anticipated_users: int | None = Field(None, ge=0, le=INT32_MAX)
    target_destination: Destination | None = None


class EngagementCreate(EngagementDetails, Body):
    """Fields to open an engagement."""

    name: str = Field(min_length=1, max_length=200, examples=["ACME GitLab 10k reference architecture"])
    customer: str = Field(min_length=1, max_length=200, examples=["ACME Corp"])
    playbook_id: PlaybookId = Field("gitlab-reference-architecture", description="Playbook the engagement follows.")
    slack_channel: str | None = Field(
        None, min_length=1, max_length=80, description="Where reminders go (the notifier's default when unset)."
    )


class EngagementUpdate(Body):
    """Fields to change; `version` must be the one last read (409 when someone changed it since)."""

    version: int = Field(ge=1, le=INT32_MAX)
    name: str | None = Field(None, min_length=1, max_length=200)
    customer: str | None = Field(None, min_length=1, max_length=200)
    status: EngagementStatus | None = Field(
        None,
        description="closed: pending reminders are withdrawn and every upload token revoked (reactivated, it needs "
        "new ones).",
    )
    slack_channel: str | None = Field(None, min_length=1, max_length=80)
    owners: dict[Role, str] | None = None
    links: dict[LinkKind, HttpUrl] | None = None
    current_users: int | None = Field(None, ge=0, le=INT32_MAX)
    anticipated_users: int | None = Field(None, ge=0, le=INT32_MAX)
    target_destination: Destination | None = None

    _not_null = field_validator("name", "customer", "status", "owners", "links")(not_null)


class EngagementRead(EngagementDetails):
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

    @field_validator("owners", "links", mode="before")
    @classmethod
    def _from_jsonb(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value
