"""Technical design profile schemas."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import ConfigDict, Field

from outrider_common.http import INT32_MAX, INT64_MAX
from outrider_tracker.body import Body

DeploymentType = Literal["omnibus", "helm", "hybrid", "docker", "source", "saas"]


class DeploymentProfile(Body):
    """What the customer runs (every field optional until known)."""

    deployment_type: DeploymentType | None = None
    hosting_provider: str | None = Field(None, max_length=100, examples=["AWS"])
    instance_types: str | None = Field(None, max_length=500, examples=["c5.4xlarge x 3 (Rails), r5.2xlarge (Gitaly)"])
    total_cpu: int | None = Field(None, ge=0, le=INT32_MAX)
    total_memory_gb: int | None = Field(None, ge=0, le=INT32_MAX)
    total_disk_gb: int | None = Field(None, ge=0, le=INT32_MAX)
    environments: list[str] = Field(default_factory=list, examples=[["staging", "production"]])
    code_hosts: list[str] = Field(default_factory=list, examples=[["GitLab 16.11", "GitHub Enterprise"]])
    repositories: int | None = Field(None, ge=0, le=INT32_MAX)
    monorepos: int | None = Field(None, ge=0, le=INT32_MAX)
    # Bounded, or a 200,001-digit number is stored as sent and one past PostgreSQL's numeric scale fails there (500).
    largest_repo_gb: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=3, examples=["38.5"])
    lines_of_code: int | None = Field(None, ge=0, le=INT64_MAX)
    externalised_services: list[str] = Field(default_factory=list, examples=[["PostgreSQL (RDS)", "Redis"]])


class DeploymentProfileUpdate(DeploymentProfile):
    """A profile to store, with the version it was read at if the writer wants a stale read refused."""

    version: int | None = Field(
        None,
        ge=0,
        le=INT32_MAX,
        description="The version you read (0 before any profile was stored): 409 when it changed since. Leave it out"
        " to write regardless (a PATCH then keeps the fields others changed meanwhile).",
    )


class DeploymentProfileRead(DeploymentProfile):
    """The stored profile."""

    model_config = ConfigDict(extra="ignore")  # read from rows, not a request

    version: int = Field(0, description="1 when first stored, one more at each change; 0 before any")
    updated_at: datetime | None = None


# What a technical advisor needs before taking an engagement over (the hand-off rule of the joint implementation).
REQUIRED_FOR_ADVISOR = ("deployment_type", "hosting_provider", "total_cpu", "total_memory_gb", "total_disk_gb",
                        "code_hosts", "repositories", "largest_repo_gb")  # fmt: skip


def missing_fields(profile: DeploymentProfile | None, required: tuple[str, ...]) -> list[str]:
    """The `required` fields the profile leaves empty (all of them without a profile)."""
    if profile is None:
        return list(required)
    return [f for f in required if getattr(profile, f) in (None, [], "")]
