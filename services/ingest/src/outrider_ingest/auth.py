"""Engagement-scoped bearer tokens: 401 without a live token, 403 with another engagement's, 503 when PostgreSQL
cannot tell."""

import asyncio
import logging
from typing import Annotated
from uuid import UUID

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from outrider_common.db import DATABASE_AWAY
from outrider_common.tokens import engagement_of
from outrider_ingest import metrics
from outrider_ingest.outage import retry_later

log = logging.getLogger(__name__)
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
    timeout = request.app.state.settings.database_timeout_s
    try:
        # Bounded: a PostgreSQL that stops answering would otherwise hold the upload until the client gives up. The
        # acquire timeout also bounds the release, which waits for the server to take the cancelled query's cancel.
        async with asyncio.timeout(timeout), request.app.state.db.pool.acquire(timeout=timeout) as conn:
            owner = await engagement_of(conn, credentials.credentials)
    except DATABASE_AWAY as exc:
        metrics.REJECTED.labels("database_unavailable").inc()
        log.warning("token lookup failed engagement_id=%s error=%r", engagement_id, exc)
        raise retry_later("PostgreSQL could not check the token; retry later") from exc
    if owner is None:
        metrics.REJECTED.labels("unknown_token").inc()
        raise HTTPException(401, "unknown or revoked token", headers=challenge)
    if owner != engagement_id:
        metrics.REJECTED.labels("wrong_engagement").inc()
        raise HTTPException(403, "this token belongs to another engagement")
