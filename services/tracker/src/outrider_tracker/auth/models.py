"""API-token schemas."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from outrider_tracker.body import Body


class Role(StrEnum):
    """What a token may do: viewers read, editors also write, admins also manage API tokens."""

    viewer = "viewer"
    editor = "editor"
    admin = "admin"

    @property
    def rank(self) -> int:
        """Position in viewer < editor < admin."""
        return list(Role).index(self)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: its name is the actor recorded in the audit trail."""

    name: str
    role: Role


class ApiTokenCreate(Body):
    """Who the token is for and what it may do."""

    name: str = Field(
        min_length=1,
        max_length=200,
        examples=["alice@example.com"],
        description="Person or system using the token; recorded as the actor of its changes.",
    )
    role: Role = Field(examples=["editor"])


class ApiTokenRead(BaseModel):
    """A token's metadata (never the token)."""

    id: str = Field(description="Handle for listing and revoking (a prefix of the token's digest, not the token).")
    name: str
    role: Role
    created_by: str = Field(
        description="The admin who minted it (API tokens belong to no engagement's audit trail: "
        "who minted and who revoked each is kept here)."
    )
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None = Field(description="The admin who revoked it.")


class ApiTokenCreated(ApiTokenRead):
    """A new token: `token` is shown this once and never again."""

    token: str
