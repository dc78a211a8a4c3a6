"""Engagement-scoped bearer tokens: 401 without a live token, 403 with another engagement's."""

from typing import Annotated
from uuid import UUID

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from outrider_common.tokens import engagement_of
from outrider_ingest import metrics

bearer = HTTPBearer(auto_error=False, description="An upload token minted by the tracker for this engagement.")


async def authorize(
    engagement_id: UUID,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through only with a live token of `engagement_id`."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        metrics.REJECTED.labels("no_token").inc()
        raise HTTPException(401, "missing bearer token", headers=challenge)
    owner = await engagement_of(request.app.state.db.pool, credentials.credentials)
    if owner is None:
        metrics.REJECTED.labels("unknown_token").inc()
        raise HTTPException(401, "unknown or revoked token", headers=challenge)
    if owner != engagement_id:
        metrics.REJECTED.labels("wrong_engagement").inc()
        raise HTTPException(403, "this token belongs to another engagement")
