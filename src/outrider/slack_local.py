"""A local HTTP server speaking the part of Slack's Web API Outrider uses (`chat.postMessage`).

For tests and `outrider up`, where Slack cannot be reached: the real `slack_sdk` client talks to it. It records every
message it posts, answers a request Slack would refuse with Slack's error (`invalid_blocks`, `invalid_json`, `no_text`,
…; an incoming webhook's `invalid_payload` with 400) without posting it, and can answer 429 with Retry-After, 500, or
slowly, on demand.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class Refused(Exception):
    """A request Slack answers with an error instead of posting it: `str(exc)` is Slack's error code."""


def _arguments(body: bytes, content_type: str) -> dict[str, Any]:
    """A Web API call's arguments, from a JSON or a form body, as Slack reads them."""
    if content_type.startswith("application/json"):
        try:
            args = json.loads(body or b"{}")
        except ValueError:
            raise Refused("invalid_json") from None
        if not isinstance(args, dict):
            raise Refused("invalid_json")
        return args
    try:
        return {k: v[0] for k, v in parse_qs(body.decode()).items()}
    except (UnicodeDecodeError, ValueError):
        raise Refused("invalid_form_data") from None


def _payload(body: bytes, content_type: str) -> dict[str, Any]:
    """An incoming webhook's message: a JSON body, or a form's `payload` field holding one."""
    try:
        if not content_type.startswith("application/json"):
            body = parse_qs(body.decode())["payload"][0].encode()
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, KeyError):
        raise Refused("invalid_payload") from None
    if not isinstance(payload, dict):
        raise Refused("invalid_payload")
    return payload


def _invalid(args: dict[str, Any]) -> str | None:
    """Slack's own refusals of a message's shape: no text, text over 40,000 characters, blocks that are not a list
    of objects, more than 50 blocks, a section's or a context element's text over 3,000 characters."""
    blocks = args.get("blocks") or []
    if not (args.get("text") or blocks or args.get("attachments")):
        return "no_text"
    if len(str(args.get("text") or "")) > 40_000:
        return "msg_too_long"
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "invalid_blocks"
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks) or len(blocks) > 50:
        return "invalid_blocks"
    texts = [b.get("text") or {} for b in blocks if b.get("type") == "section"]
    for context in (b for b in blocks if b.get("type") == "context"):
        elements = context.get("elements")
        if not isinstance(elements, list):
            return "invalid_blocks"
        texts += [e for e in elements if not isinstance(e, dict) or e.get("type") in ("mrkdwn", "plain_text")]
    if any(not isinstance(t, dict) or len(str(t.get("text", ""))) > 3000 for t in texts):
        return "invalid_blocks"
    return None


@dataclass
class Scripted:
    """One planned non-success answer."""

    status: int
    retry_after: int | None = None


@dataclass
class LocalSlack:
    """Start with `start()`; point `slack_sdk` at `api_url`; read `messages` (those posted) and `requests` (every
    authorised call answered, posted or refused)."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0
    requests: int = 0
    _script: deque[Scripted] = field(default_factory=deque)
    _outage_until: float = 0.0
    _limited: dict[str, tuple[float, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def api_url(self) -> str:
        """Base URL for `AsyncWebClient(base_url=...)`."""
        return f"http://{self.host}:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        """An incoming-webhook URL for `AsyncWebhookClient`."""
        return f"http://{self.host}:{self.port}/services/T000/B000/local"

    def fail_next(self, count: int, status: int, retry_after: int | None = None) -> None:
        """Answer the next `count` posts with `status` (429 carries Retry-After)."""
        with self._lock:
            self._script.extend(Scripted(status, retry_after) for _ in range(count))

    def fail_for(self, seconds: float) -> None:
        """Answer every post with 429 (Retry-After: 1) and 500 in turn for `seconds`: an outage, not a blip."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    def limit_channel(self, channel: str, seconds: float, retry_after: int) -> None:
        """Answer posts to `channel` with 429 and Retry-After `retry_after` for `seconds` (Slack limits each
        channel to about a message a second); other channels are served."""
        with self._lock:
            self._limited[channel] = (time.monotonic() + seconds, retry_after)

    def start(self) -> LocalSlack:
        """Serve in a background thread."""
        slack = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path == "/messages":
                    with slack._lock:
                        self._reply(200, slack.messages)
                else:
                    self._reply(404, {"ok": False, "error": "unknown_method"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                webhook = self.path.startswith("/services/")
                if not webhook and not self.path.startswith("/api/chat.postMessage"):
                    return self._reply(404, {"ok": False, "error": "unknown_method"})
                if not webhook and not self.headers.get("Authorization", "").startswith("Bearer "):
                    return self._reply(200, {"ok": False, "error": "not_authed"})
                with slack._lock:
                    slack.requests += 1
                if slack.delay_s:
                    time.sleep(slack.delay_s)
                with slack._lock:
                    planned = slack._script.popleft() if slack._script else None
                    if planned is None and time.monotonic() < slack._outage_until:
                        planned = Scripted(429, 1) if slack.requests % 2 else Scripted(500)
                if planned and planned.status == 429:
                    return self._reply(429, {"ok": False, "error": "ratelimited"},
                                       {"Retry-After": str(planned.retry_after or 1)})  # fmt: skip
                if planned:
                    return self._reply(planned.status, {"ok": False, "error": "internal_error"})
                content_type = self.headers.get("Content-Type", "")
                if webhook:  # an incoming webhook posts to its own channel and answers a plain "ok"
                    try:
                        payload = _payload(body, content_type)
                    except Refused as exc:
                        return self._reply_text(400, str(exc))
                    if refusal := _invalid(payload):  # a webhook's refusals are a 400 with the word
                        return self._reply_text(400, refusal)
                    with slack._lock:
                        slack.messages.append({**payload, "channel": "(webhook)", "ts": ""})
                    return self._reply_text(200, "ok")
                try:
                    args = _arguments(body, content_type)
                except Refused as exc:
                    return self._reply(200, {"ok": False, "error": str(exc)})
                if not args.get("channel"):
                    return self._reply(200, {"ok": False, "error": "channel_not_found"})
                with slack._lock:
                    until, retry_after = slack._limited.get(args["channel"], (0.0, 0))
                if time.monotonic() < until:
                    return self._reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
                if error := _invalid(args):
                    return self._reply(200, {"ok": False, "error": error})
                with slack._lock:
                    ts = f"{int(time.time())}.{next(slack._ts):06d}"
                    slack.messages.append({**args, "ts": ts})
                self._reply(200, {"ok": True, "channel": args["channel"], "ts": ts, "message": args})

            def _reply_text(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def main() -> None:
    """`python -m outrider.slack_local PORT`: serve until interrupted (used by `outrider up`)."""
    import sys

    slack = LocalSlack(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0).start()
    print(f"local Slack Web API at {slack.api_url} (messages at http://{slack.host}:{slack.port}/messages)", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
