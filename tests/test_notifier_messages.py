"""What customers' log keys and editors' titles can do to a Slack message: neither forge lines, formatting, links or
mentions, nor make Slack refuse the message (a refusal is permanent: the notification would be lost)."""

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from outrider.slack_local import LocalSlack
from outrider_notifier.messaging import build, build_digest, build_findings
from outrider_notifier.slack import SlackWebApi

SNEAKY = "GET /x\n*URGENT* re-login at https://evil.example <!channel> `x`"
SHOWN = "`GET /x *URGENT* re-login at https://evil.example &lt;!channel&gt; 'x'`"
ENTITY = re.compile(r"&(amp|lt|gt);")


def finding(key: str) -> dict[str, Any]:
    return {"key": key, "summary": f"{key} p99 9000 ms > 5000 ms", "log_type": "production_json",
            "window_start": "2026-11-20T10:00:00+00:00"}  # fmt: skip


def mrkdwn(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every mrkdwn text object in `blocks`."""
    found = [b["text"] for b in blocks if b["type"] == "section"]
    found += [e for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert all(t["type"] == "mrkdwn" for t in found)
    return found


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    local = LocalSlack().start()
    yield local
    local.stop()


def test_a_log_key_can_forge_no_line_formatting_link_or_mention() -> None:
    text, blocks = build("finding", finding(SNEAKY), name="10k", customer="ACME", engagement_id="e1", link=None)
    assert blocks[0]["text"]["text"] == f"*ACME* · 10k\nNew finding: {SHOWN} p99 9000 ms &gt; 5000 ms"
    assert "\n" not in text
    _, group = build_findings([finding(SNEAKY), finding("GET /y")], name="10k", customer="ACME",
                              engagement_id="e1", link=None)  # fmt: skip
    assert group[1]["text"]["text"].split("\n") == [
        f"• {SHOWN} p99 9000 ms &gt; 5000 ms (production_json, window 2026-11-20 10:00 UTC)",
        "• `GET /y` p99 9000 ms &gt; 5000 ms (production_json, window 2026-11-20 10:00 UTC)",
    ]
    for obj in mrkdwn(blocks) + mrkdwn(group):
        assert obj["verbatim"] is True  # no bare URL made a link, no name a mention
        assert not {"<", ">"} & set(obj["text"])


def test_a_summary_not_made_of_its_key_is_code_as_a_whole() -> None:
    odd = {"summary": "*all* logins fail\r\nsee _here_", "log_type": "production_json", "window_start": ""}
    _, blocks = build("finding", odd, name="n", customer="c", engagement_id="e1", link=None)
    assert blocks[0]["text"]["text"] == "*c* · n\nNew finding: `*all* logins fail  see _here_`"


def test_titles_and_names_from_the_tracker_stay_on_their_line() -> None:
    payload = {"title": "Kick-off\r\n<!here> at https://evil.example\u2028*now*", "scheduled_at": "2026-12-01T10:00"}
    text, blocks = build("touchpoint_due", payload, name="10k\nrollout", customer="AC\x00ME", engagement_id="e1",
                         link=None)  # fmt: skip
    assert blocks[0]["text"]["text"] == (
        "*AC ME* · 10k rollout\nTouchpoint coming up: *Kick-off  &lt;!here&gt; at https://evil.example *now**"
    )
    assert not {"\n", "\r"} & set(text)
    item = {"kind": "touchpoint_due", "engagement_id": "e1", "name": "n\nx", "customer": "c", "payload": payload}
    digest_text, digest = build_digest([item], link_template="")
    assert digest_text.count("\n") == 1  # the header's line, then the reminder's
    assert "\n" not in digest[1]["text"]["text"]
    assert all(obj["verbatim"] is True for obj in mrkdwn(blocks) + mrkdwn(digest))


def fits(text: str, blocks: list[dict[str, Any]]) -> None:
    """Within Slack's limits, and no escape cut in half (Slack would show `&am…`)."""
    assert len(text) <= 4000
    assert "&" not in ENTITY.sub("", text)
    for obj in mrkdwn(blocks):
        assert len(obj["text"]) <= 3000
        assert "&" not in ENTITY.sub("", obj["text"])
        assert obj["text"].count("`") % 2 == 0


KEYS = [("&<>" * 342)[:1024], "a&" * 512, "&" * 1024]  # 1 KiB, escaping to up to 5 KiB


@pytest.mark.parametrize("key", KEYS)
def test_findings_with_long_escaped_keys_fit_slacks_limits(key: str) -> None:
    findings = [finding(key + str(n)) for n in range(12)]
    text, blocks = build_findings(findings, name="10k", customer="ACME", engagement_id="e1", link="https://t/e1")
    fits(text, blocks)
    listed = blocks[1]["text"]["text"].split("\n")
    assert listed[10:] == ["… and <https://t/e1|2 more>."]
    assert all(line.startswith("• `") and "…` p99 9000 ms &gt; 5000 ms (production_json" in line
               for line in listed[:10])  # fmt: skip
    fits(*build("finding", finding(key), name="10k", customer="ACME", engagement_id="e1", link=None))


@pytest.mark.parametrize("key", KEYS)
def test_long_escaped_titles_and_names_fit_slacks_limits(key: str) -> None:
    payload = {"title": key, "scheduled_at": "2026-12-01T10:00", "from": key, "to": key, "missing": [key] * 20,
               "forced": True}  # fmt: skip
    for kind in ("touchpoint_due", "stage_changed"):
        fits(*build(kind, payload, name=key, customer=key, engagement_id="e1", link=None,
                    owners={"project_manager": key, "solutions_architect": key}))  # fmt: skip
    items = [{"kind": "touchpoint_due", "engagement_id": f"e{n}", "name": key, "customer": key, "payload": payload,
              "owners": {"solutions_architect": "U024BE7LH"}} for n in range(200)]  # fmt: skip
    text, blocks = build_digest(items, link_template="https://t/{engagement_id}")
    fits(text, blocks)
    first = blocks[1]["text"]["text"].split("\n")
    assert all(line.endswith(f"… <@U024BE7LH> <https://t/e{n}|engagement>") for n, line in enumerate(first))


async def test_a_finding_with_a_long_key_is_posted_not_refused(slack: LocalSlack) -> None:
    """Through slack_sdk to a Slack that refuses what Slack refuses: a message over its limits would be given up."""
    key = "&" * 1024
    api = SlackWebApi("xoxb-local", slack.api_url)
    messages = [
        build("finding", finding(key), name="10k", customer="ACME", engagement_id="e1", link=None),
        build_findings([finding(key + str(n)) for n in range(12)], name="10k", customer="ACME", engagement_id="e1",
                       link="https://t/e1", owners={"solutions_architect": "U024BE7LH"}),
    ]  # fmt: skip
    for text, blocks in messages:
        await api.post(channel="#acme", text=text, blocks=blocks)
    assert [(m["text"], m["blocks"]) for m in slack.messages] == messages


def test_the_local_slack_refuses_a_long_context_or_text_as_slack_does(slack: LocalSlack) -> None:
    auth = {"Authorization": "Bearer xoxb-local"}
    long_context = [{"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * 3001}]}]
    for body, error in (({"channel": "#c", "text": "hi", "blocks": long_context}, "invalid_blocks"),
                        ({"channel": "#c", "text": "x" * 40_001}, "msg_too_long")):  # fmt: skip
        answer = httpx.post(slack.api_url + "chat.postMessage", json=body, headers=auth, timeout=5)
        assert answer.json() == {"ok": False, "error": error}
    assert slack.messages == []
