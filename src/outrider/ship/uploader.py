"""Posting batches to ingest: gzip, bearer token, retries with backoff that honour Retry-After."""

import random
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from outrider.ship.tailer import Batch

PIECE = 1 << 20  # compressed and sent a MiB at a time, so ingest works on the first while the next is compressed


def gzipped(data: bytes) -> Iterator[bytes]:
    """`data` as one gzip stream (level 1: logs still shrink ~8x), produced piece by piece for a streaming body."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    view = memoryview(data)
    for start in range(0, len(view), PIECE):
        yield deflate.compress(view[start : start + PIECE])
    yield deflate.flush()


class ShipError(Exception):
    """Ingest refused the data for a reason a retry cannot fix (token, size)."""


class FileRefused(ShipError):
    """Ingest, or a proxy in front of it, refused this file's bytes (a line or body too long, bad gzip); other files
    may still ship. `taken` is the offset ingest says it took the lines up to, None when the answer does not say (a
    proxy's, or one given before ingest read the body): then nothing of the request was taken."""

    def __init__(self, message: str, taken: int | None = None) -> None:
        super().__init__(message)
        self.taken = taken


class Retryable(Exception):
    """Ingest or the network could not take the data now."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unreachable(Retryable):
    """No connection to ingest at all (refused, no such host, connect timeout): nothing was sent."""


MAX_WAIT_S = 60.0
ATTEMPTS = 10  # tries of one batch when the shipper must end (--once, bundle)
UNREACHABLE_S = 10.0  # how long such a run keeps trying to connect to an ingest that does not answer at all
CONNECT_TIMEOUT_S = 10.0  # a connection not made by then will not be; keeps --once within its bound
# On ingest's refusals of a body it had begun to take: the offset up to which it took the lines (ingest's api.py).
NEXT_OFFSET = "Outrider-Next-Offset"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), capped; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - (now or datetime.now(UTC))).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_WAIT_S)


class Stop:
    """A stop request, set from a signal handler: a plain flag, since a lock taken there could be one the interrupted
    code holds."""

    def __init__(self) -> None:
        self.requested = False

    def sleep(self, seconds: float) -> None:
        """Sleep `seconds`, or less once a stop is requested."""
        end = time.monotonic() + seconds
        while not self.requested and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))


@dataclass
class Uploader:
    """Ships batches of one engagement to `url`.

    `attempts` bounds the tries of one batch and `unreachable_s` the seconds spent trying to connect to an ingest
    that does not answer at all; None for both: retry until the batch lands (a follower never drops data).
    """

    url: str
    engagement_id: str
    token: str = field(repr=False)  # never in a traceback or a log line
    source: str
    attempts: int | None = ATTEMPTS
    unreachable_s: float | None = UNREACHABLE_S
    timeout: float = 60.0
    backoff_s: float = 0.5
    on_retry: Callable[[str], None] | None = None  # told each wait, so a long outage is visible
    # A stop request (Ctrl-C, SIGTERM) ends retries at once; the batch is resent by the next run.
    stopping: Stop = field(default_factory=Stop)

    def __post_init__(self) -> None:
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, CONNECT_TIMEOUT_S))
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {self.token}"})
        self._shown_url = str(httpx.URL(self.url).copy_with(userinfo=b""))  # user:password@ is a secret too
        self._host = httpx.URL(self.url).netloc.decode("ascii", "replace")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _redacted(self, message: str) -> str:
        """`message` without the token, whatever echoed it."""
        return message.replace(self.token, "otr_…") if self.token else message

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with full jitter (capped), never sooner than the Retry-After ingest asked for, and
        never past the end of the time allowed to reach an unreachable ingest."""
        backoff = random.uniform(0, min(MAX_WAIT_S, self.backoff_s * 2**state.attempt_number))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Unreachable) and self.unreachable_s is not None:
            return min(backoff, max(self.unreachable_s - (state.seconds_since_start or 0.0), 0.0))
        if isinstance(exc, Retryable) and exc.retry_after is not None:
            return max(exc.retry_after, backoff)
        return backoff

    def _stop(self, state: RetryCallState) -> bool:
        """Give up after `attempts` tries, when ingest still cannot be reached `unreachable_s` into the batch, or when
        asked to stop."""
        if self.stopping.requested or (self.attempts is not None and state.attempt_number >= self.attempts):
            return True
        exc = state.outcome.exception() if state.outcome else None
        bound, elapsed = self.unreachable_s, state.seconds_since_start or 0.0
        return bound is not None and isinstance(exc, Unreachable) and elapsed >= bound

    def send(self, batch: Batch, log_type: str | None) -> int:
        """POST one batch, retrying the very same bytes; the offset ingest acknowledged up to, or ShipError."""

        def tell(state: RetryCallState) -> None:
            if self.on_retry is not None and state.outcome is not None:
                reason = state.outcome.exception()
                self.on_retry(f"{reason}; {batch.path} at offset {batch.offset} again in {state.upcoming_sleep:.1f} s")

        retrying = Retrying(
            retry=retry_if_exception_type(Retryable), wait=self._wait, stop=self._stop, before_sleep=tell, reraise=True,
            sleep=self.stopping.sleep,  # a stop request cuts the wait short
        )  # fmt: skip

        def attempt() -> int:
            if self.stopping.requested:  # asked to stop during a wait: not one more try
                raise ShipError(f"stopped before {batch.path} at offset {batch.offset} was acknowledged")
            return self._send_once(batch, log_type)

        try:
            return retrying(attempt)
        except Retryable as exc:
            tries, seconds = retrying.statistics["attempt_number"], retrying.statistics["delay_since_first_attempt"]
            raise ShipError(
                f"gave up on {batch.path} at offset {batch.offset} after {tries} tries over {seconds:.0f} s: {exc}"
            ) from exc

    def _send_once(self, batch: Batch, log_type: str | None) -> int:
        """POST one batch (the same bytes on every retry, so chunk ids repeat); returns the acknowledged offset."""
        params: dict[str, str | int] = {"source": self.source, "file_id": batch.file_id, "offset": batch.offset}
        if log_type:
            params["log_type"] = log_type
        try:
            response = self._client.post(
                f"{self.url}/v1/engagements/{self.engagement_id}/logs",
                params=params,
                content=gzipped(batch.data),  # a fresh stream per attempt: a retry sends the very same bytes
                headers={"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"},
            )
        except httpx.UnsupportedProtocol:  # no retry fixes the URL
            raise ShipError("cannot send to ingest: its URL does not start with http:// or https://") from None
        except httpx.LocalProtocolError:  # its message quotes the offending header, which may be the token
            raise ShipError("cannot send to ingest: the token or a header is not a valid HTTP value") from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            where = f"ingest not reachable at {self._shown_url}: {exc}"
            raise Unreachable(self._redacted(f"{where} (is it running, and is that its URL?)")) from exc
        except httpx.TransportError as exc:
            raise Retryable(self._redacted(f"ingest not reachable: {exc}")) from exc
        if response.status_code == 202:
            return self._acknowledged(response, batch)
        detail = self._redacted(response.text[:500])
        # 408: a proxy timed the request out (RFC 9110 §15.5.9: the client may repeat it)
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise Retryable(
                f"ingest answered {response.status_code}", retry_after_seconds(response.headers.get("Retry-After"))
            )
        if response.status_code in (401, 403):
            raise ShipError(f"ingest refused the token ({response.status_code}): {detail}")
        if response.status_code in (404, 405):  # no file of ours causes it: stop rather than refuse every file
            raise ShipError(
                f"ingest answered {response.status_code} at {self._shown_url}: is that ingest's address, and the"
                f" engagement id right? {detail}"
            )
        taken = _taken(response, batch)
        hint = ""
        if response.status_code == 413 and taken is None and batch.data.count(b"\n") > 1:  # not ingest's line limit
            hint = " (a proxy limiting request bodies? `outrider ship tail --batch-bytes` makes them smaller)"
        raise FileRefused(
            f"ingest refused {batch.path} at offset {batch.offset} ({response.status_code}): {detail}{hint}", taken
        )

    def _acknowledged(self, response: httpx.Response, batch: Batch) -> int:
        """The offset a 202 acknowledges, checked to lie within the batch: a larger one would skip lines never sent,
        a smaller one resend or corrupt the state file. Anything else stops the shipper with nothing advanced."""
        try:
            body = response.json()
        except ValueError:
            body = None
        value = body.get("next_offset") if isinstance(body, dict) else None
        end = batch.offset + len(batch.data)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ShipError(
                f"{self._host} answered 202 to {batch.path} at offset {batch.offset} without a next_offset "
                f"(not ingest's answer: a proxy in between?); nothing recorded as shipped, the next run sends it again"
            )
        if not batch.offset <= value <= end:
            raise ShipError(
                f"{self._host} answered 202 to {batch.path} with next_offset {value}, outside the {batch.offset} to "
                f"{end} sent (not ingest's answer: a proxy in between?); nothing recorded as shipped, the next run "
                f"sends it again"
            )
        return value


def _taken(response: httpx.Response, batch: Batch) -> int | None:
    """The offset ingest's refusal says it took `batch` up to, or None when it does not say so (or says nonsense)."""
    try:
        taken = int(response.headers.get(NEXT_OFFSET, ""))
    except ValueError:
        return None
    return taken if batch.offset <= taken <= batch.offset + len(batch.data) else None
