"""Engagement schemas."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

EngagementStatus = Literal["active", "paused", "closed"]


class EngagementCreate(BaseModel):
    """Fields to open an engagement."""

    name: str = Field(min_length=1, max_length=200, examples=["ACME GitLab 10k reference architecture"])
    customer: str = Field(min_length=1, max_length=200, examples=["ACME Corp"])


class EngagementRead(BaseModel):
    """An engagement as the API returns it."""

    id: UUID
    name: str
    customer: str
    status: EngagementStatus
    created_at: datetime
    updated_at: datetime
