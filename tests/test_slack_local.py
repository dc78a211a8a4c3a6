"""The local Slack answers a request real Slack refuses with Slack's error, as Slack does (the Web API with 200 and
`ok: false`, an incoming webhook with 400), and posts nothing: a notifier never sees a dropped connection, which it
would take for a message that may have been posted."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from outrider.slack_local import LocalSlack

AUTH = {"Authorization": "Bearer xoxb-local"}
FORM = {"Content-Type": "application/x-www-form-urlencoded", **AUTH}
JSON = {"Content-Type": "application/json; charset=utf-8", **AUTH}


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    local = LocalSlack().start()
    yield local
    local.stop()


def post(slack: LocalSlack, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(slack.api_url + "chat.postMessage", content=body, headers=headers, timeout=5)


@pytest.mark.parametrize(
    ("body", "headers", "error"),
    [
        (b"channel=%23c&text=hi&blocks=%5Bnot+json", FORM, "invalid_blocks"),
        (b"channel=%23c&text=caf\xe9", FORM, "invalid_form_data"),
        (b'[{"channel": "#c", "text": "hi"}]', JSON, "invalid_json"),
        (b'{"channel": "#c", "text": "hi"', JSON, "invalid_json"),
        (b'{"channel": "#c", "text": "hi", "blocks": ["section", 1]}', JSON, "invalid_blocks"),
        (b'{"channel": "#c", "text": "hi", "blocks": {"type": "section"}}', JSON, "invalid_blocks"),
        (b'{"channel": "#c", "blocks": [{"type": "section", "text": "bare"}]}', JSON, "invalid_blocks"),
        (b'{"channel": "#c"}', JSON, "no_text"),
        (b"channel=%23c&text=", FORM, "no_text"),
    ],
)
def test_a_message_slack_refuses_is_answered_with_its_error_and_not_posted(
    slack: LocalSlack, body: bytes, headers: dict[str, str], error: str
) -> None:
    answer = post(slack, body, headers)
    assert (answer.status_code, answer.json()) == (200, {"ok": False, "error": error})
    assert slack.messages == []
    assert slack.requests == 1  # a call answered, as the notifier's retries count them


@pytest.mark.parametrize(
    "body",
    [b"not json", b'["text", "hi"]', b'{"text": "hi"', b"\xff\xfe", b""],
)
def test_an_incoming_webhook_payload_slack_refuses_is_a_400_and_not_posted(slack: LocalSlack, body: bytes) -> None:
    answer = httpx.post(slack.webhook_url, content=body, headers={"Content-Type": "application/json"}, timeout=5)
    assert (answer.status_code, answer.text) == (400, "invalid_payload")
    assert slack.messages == []


def test_an_incoming_webhook_without_text_is_a_400(slack: LocalSlack) -> None:
    answer = httpx.post(slack.webhook_url, json={"username": "outrider"}, timeout=5)
    assert (answer.status_code, answer.text) == (400, "no_text")
    assert slack.messages == []


def test_well_formed_messages_are_still_posted(slack: LocalSlack) -> None:
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    form = post(slack, b"channel=%23c&text=hi&blocks=" + json.dumps(blocks).encode(), FORM)
    assert form.json()["ok"] is True
    assert post(slack, json.dumps({"channel": "#c", "blocks": blocks}).encode(), JSON).json()["ok"] is True
    hook = httpx.post(slack.webhook_url, data={"payload": json.dumps({"text": "hook"})}, timeout=5)
    assert (hook.status_code, hook.text) == (200, "ok")
    assert [m.get("text") for m in slack.messages] == ["hi", None, "hook"]
