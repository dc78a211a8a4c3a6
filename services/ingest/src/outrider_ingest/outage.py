"""Kafka or PostgreSQL away: 503 with Retry-After, so the shipper waits and resends the same bytes."""

from fastapi import HTTPException

RETRY_AFTER_S = 5


def retry_later(detail: str) -> HTTPException:
    """The 503 ingest answers when a dependency cannot take or check the upload now."""
    return HTTPException(503, detail, headers={"Retry-After": str(RETRY_AFTER_S)})
