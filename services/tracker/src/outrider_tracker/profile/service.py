"""Deployment profile verbs."""

from uuid import UUID

import asyncpg

from outrider_tracker.audit import service as audit
from outrider_tracker.profile.models import DeploymentProfile, DeploymentProfileRead, DeploymentProfileUpdate

FIELDS = tuple(DeploymentProfile.model_fields)


class StaleProfile(ValueError):
    """The profile changed since the caller read it."""


async def get(conn: asyncpg.Connection | asyncpg.Pool, *, engagement_id: UUID) -> DeploymentProfileRead | None:
    """The engagement's profile, or None before one was recorded."""
    row = await conn.fetchrow(
        f"SELECT {', '.join(FIELDS)}, version, updated_at FROM deployment_profiles WHERE engagement_id = $1",
        engagement_id,
    )
    return DeploymentProfileRead.model_validate(dict(row)) if row else None


async def put(
    pool: asyncpg.Pool, *, engagement_id: UUID, profile: DeploymentProfileUpdate, actor: str, partial: bool = False
) -> DeploymentProfileRead:
    """Replace the profile, or with `partial` only the fields sent in it (a PATCH: two people changing different
    fields both keep their change); StaleProfile if a `version` is sent and the profile changed since. Audit and
    publish the fields that changed (a cleared one as null) and bump the version; nothing if none did."""
    async with pool.acquire() as conn, conn.transaction():
        # Lock the engagement, not the profile row the first PUT has yet to create: concurrent PUTs take turns, each
        # compared with what the one before it left.
        await conn.execute("SELECT 1 FROM engagements WHERE id = $1 FOR NO KEY UPDATE", engagement_id)
        current = await get(conn, engagement_id=engagement_id) or DeploymentProfileRead()
        if profile.version is not None and profile.version != current.version:
            raise StaleProfile(f"profile is at version {current.version}, not {profile.version}: reload and retry")
        sent = profile.model_dump(mode="json", include=profile.model_fields_set if partial else set(FIELDS))
        held = current.model_dump(mode="json")
        changes = {field: value for field, value in sent.items() if field in FIELDS and held[field] != value}
        if not changes:
            return current
        stored_fields = DeploymentProfile.model_validate({f: changes.get(f, held[f]) for f in FIELDS})
        placeholders = ", ".join(f"${i + 2}" for i in range(len(FIELDS)))
        updates = ", ".join(f"{f} = excluded.{f}" for f in FIELDS)
        await conn.execute(
            f"INSERT INTO deployment_profiles (engagement_id, {', '.join(FIELDS)}) VALUES ($1, {placeholders})"
            f" ON CONFLICT (engagement_id) DO UPDATE SET {updates},"
            " version = deployment_profiles.version + 1, updated_at = now()",
            engagement_id,
            *(getattr(stored_fields, f) for f in FIELDS),
        )
        await audit.record_change(conn, engagement_id=engagement_id, actor=actor, action="profile.updated",
                                  details=changes)  # fmt: skip
        stored = await get(conn, engagement_id=engagement_id)
    assert stored is not None  # just written
    return stored
