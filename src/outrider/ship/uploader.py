"""Posting batches to ingest: gzip, bearer token, retries with backoff that honour Retry-After."""

import gzip
import random
from dataclasses import dataclass

import httpx
from tenacity import RetryCallState, retry, retry_if_exception_type, stop_after_attempt

from outrider.ship.tailer import Batch


class ShipError(Exception):
    """Ingest refused the data for a reason a retry cannot fix (token, size)."""


class Retryable(Exception):
    """Ingest or the network could not take the data now."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _wait(state: RetryCallState) -> float:
    """Retry-After when ingest gave one, else exponential backoff with full jitter (capped at 60 s)."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, Retryable) and exc.retry_after is not None:
        return exc.retry_after
    return random.uniform(0, min(60.0, 0.5 * 2**state.attempt_number))


@dataclass
class Uploader:
    """Ships batches of one engagement to `url`; `attempts` bounds the retries of one batch."""

    url: str
    engagement_id: str
    token: str
    source: str
    attempts: int = 10
    timeout: float = 60.0

    def __post_init__(self) -> None:
        self._client = httpx.Client(timeout=self.timeout, headers={"Authorization": f"Bearer {self.token}"})
        self.send = retry(
            retry=retry_if_exception_type(Retryable), wait=_wait, stop=stop_after_attempt(self.attempts), reraise=True
        )(self._send_once)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _send_once(self, batch: Batch, log_type: str | None) -> int:
        """POST one batch (the same bytes on every retry, so chunk ids repeat); returns the acknowledged offset."""
        params: dict[str, str | int] = {"source": self.source, "file_id": batch.file_id, "offset": batch.offset}
        if log_type:
            params["log_type"] = log_type
        try:
            response = self._client.post(
                f"{self.url}/v1/engagements/{self.engagement_id}/logs",
                params=params,
                content=gzip.compress(batch.data, compresslevel=1),
                headers={"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"},
            )
        except httpx.TransportError as exc:
            raise Retryable(f"ingest not reachable: {exc}") from exc
        if response.status_code == 202:
            return int(response.json()["next_offset"])
        detail = response.text[:500]
        if response.status_code in (429, 502, 503, 504) or response.status_code >= 500:
            after = response.headers.get("Retry-After")
            raise Retryable(f"ingest answered {response.status_code}", float(after) if after else None)
        if response.status_code in (401, 403):
            raise ShipError(f"ingest refused the token ({response.status_code}): {detail}")
        raise ShipError(f"ingest refused {batch.path} at offset {batch.offset} ({response.status_code}): {detail}")
