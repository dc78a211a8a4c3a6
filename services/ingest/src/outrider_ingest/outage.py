"""Kafka or PostgreSQL away: 503 with Retry-After, so the shipper waits and resends the same bytes."""

import asyncpg
from fastapi import HTTPException

RETRY_AFTER_S = 5
# PostgreSQL away or busy, not a question it answered: the same request can go through later. (The notifier keeps
# its own list for the same reason; services do not import each other.)
DATABASE_AWAY: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable; TimeoutError (our bound on the lookup) is one too
    asyncpg.PostgresConnectionError,  # the connection lost in the middle of the query
    asyncpg.InterfaceError,  # the connection or the pool closed under the query
    asyncpg.OperatorInterventionError,  # the server shutting down or starting up
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.PostgresSystemError,  # the server's own I/O errors
)


def retry_later(detail: str) -> HTTPException:
    """The 503 ingest answers when a dependency cannot take or check the upload now."""
    return HTTPException(503, detail, headers={"Retry-After": str(RETRY_AFTER_S)})
