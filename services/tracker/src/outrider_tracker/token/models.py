"""Token schemas."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from outrider_tracker.body import Body


class TokenCreate(Body):
    """What the token is for."""

    name: str = Field("shipper", min_length=1, max_length=200, examples=["gitlab-rails-1 shipper"])


class TokenCreated(BaseModel):
    """A new token: `token` is shown this once and never again."""

    id: str = Field(description="Handle for listing and revoking (a prefix of the token's digest, not the token).")
    engagement_id: UUID
    name: str
    token: str
    created_at: datetime


class TokenRead(BaseModel):
    """A token's metadata (never the token)."""

    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
