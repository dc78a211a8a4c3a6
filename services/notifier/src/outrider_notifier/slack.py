"""Sending through Slack's Web API with `slack_sdk`, with each failure classified as retry-later or give-up."""

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

# slack_sdk logs an incoming webhook's URL (a secret: whoever holds it posts) at DEBUG, and at INFO on each retry
# whenever its logger's level is DEBUG or unset: WARNING of its own keeps the URL out whatever OUTRIDER_LOG_LEVEL is.
logging.getLogger("slack_sdk").setLevel(logging.WARNING)

# Errors Slack answers that another attempt cannot fix.
PERMANENT = {"channel_not_found", "not_in_channel", "invalid_auth", "account_inactive", "is_archived",
             "msg_too_long", "no_text", "invalid_blocks"}  # fmt: skip


class RetryLater(Exception):
    """Slack could not take the message now; try again after `after_s` seconds."""

    def __init__(self, kind: str, after_s: float | None) -> None:
        super().__init__(kind)
        self.kind, self.after_s = kind, after_s


class MaybePosted(Exception):
    """The request reached Slack but no answer came back (timeout, connection lost): it may have been posted."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class GiveUp(Exception):
    """Slack refused the message for a reason a retry cannot fix."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class Posted:
    """Where the message landed."""

    channel: str
    ts: str


class Sender(Protocol):
    """Posts one message; raises RetryLater, MaybePosted or GiveUp."""

    async def post(self, *, channel: str, text: str, blocks: list[dict[str, Any]]) -> Posted: ...


def _unanswered(exc: BaseException) -> RetryLater | MaybePosted:
    """A failure without Slack's answer: retry-later when no connection was made, else maybe posted."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return RetryLater("connection_error", None)
    return MaybePosted("timeout" if isinstance(exc, TimeoutError) else "connection_lost")


def _retry_handlers() -> list[AsyncRetryHandler]:
    """slack_sdk's own quick retries: 5xx, and a connection never made; never a request Slack may have taken. Not
    429: its handler would sleep Retry-After (a minute or more) inside the one dispatcher every channel waits on;
    RetryLater carries it back instead, and only that channel waits."""
    return [
        AsyncServerErrorRetryHandler(max_retry_count=2),
        AsyncConnectionErrorRetryHandler(max_retry_count=2, error_types=[aiohttp.ClientConnectorError]),
    ]


class SlackWebApi:
    """`chat.postMessage` through slack_sdk; its own handlers retry 5xx and connections never made a couple of times
    before we schedule a later attempt (a 429 at once, at Slack's Retry-After)."""

    def __init__(self, token: str, base_url: str, *, timeout_s: int = 10) -> None:
        self._client = AsyncWebClient(
            token=token, base_url=base_url, timeout=timeout_s,
            retry_handlers=_retry_handlers(),
        )  # fmt: skip

    async def post(self, *, channel: str, text: str, blocks: list[dict[str, Any]]) -> Posted:
        try:
            response = await self._client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error") or f"http_{status}")
            if status == 429:
                raise RetryLater("rate_limited", float(exc.response.headers.get("Retry-After", 1))) from exc
            if status >= 500:
                raise RetryLater(f"server_error_{status}", None) from exc
            if error in PERMANENT:
                raise GiveUp(error) from exc
            raise RetryLater(error, None) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _unanswered(exc) from exc
        return Posted(channel=str(response["channel"]), ts=str(response["ts"]))


class SlackWebhook:
    """An incoming webhook instead of a bot token: the channel is the webhook's own, no `ts` comes back."""

    def __init__(self, url: str) -> None:
        self._client = AsyncWebhookClient(
            url, timeout=10,
            retry_handlers=_retry_handlers(),
        )  # fmt: skip

    async def post(self, *, channel: str, text: str, blocks: list[dict[str, Any]]) -> Posted:
        try:
            response = await self._client.send(text=text, blocks=blocks)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _unanswered(exc) from exc
        if response.status_code == 429:
            raise RetryLater("rate_limited", float(response.headers.get("Retry-After", 1)))
        if response.status_code >= 500:
            raise RetryLater(f"server_error_{response.status_code}", None)
        if response.status_code != 200:
            raise GiveUp(response.body or f"http_{response.status_code}")
        return Posted(channel="(webhook)", ts="")
