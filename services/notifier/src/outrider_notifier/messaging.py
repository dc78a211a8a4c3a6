"""Slack Block Kit messages for reminders (pure: what to say, apart from sending it).

Every value that comes from people or logs (titles, names, customers, log keys) goes through `_t`: Slack reads `<…>`
in message text as a control sequence, so an unescaped title `<!channel>` would notify everyone in the channel and
`<https://…|click here>` would show a disguised link; a line break in it would start a line that looks like ours.
Every mrkdwn text object is `verbatim`, so Slack does not turn a bare URL or name in data into a link or mention.
A log key (the customer's) is shown as inline code (`_code`), where Slack applies no formatting.

Slack refuses (`invalid_blocks`, `msg_too_long`) a message with a text object over 3,000 characters, and a refusal
is never retried: each value is cut to its share after escaping (`&` is five characters sent), and every text is cut
to Slack's limit whatever the input (`_cut`).
"""

import re
from typing import Any
from uuid import UUID

SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{8,}")  # U024BE7LH; a name such as "Walter" is a name


# Line breaks (\n, \r, U+2028/9), other control characters, and bidi overrides that would show text reversed.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
FIELD_CHARS = 200  # one value (a title, a name, a summary) at most, as sent
SECTION_CHARS = 3000  # Slack refuses a text object (a section's, a context element's) longer
TEXT_CHARS = 4000  # a message's top-level text at most (a notification's; Slack's own limit is far above)
MAX_BLOCKS = 50  # nor a message of more blocks
LINE_CHARS = 600  # one digest line at most (a title may be long)


def _line(value: object) -> str:
    return CONTROL.sub(" ", str(value))


def _cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, ending in "…" when cut; never cut inside an escape (`&amp;`), a `<…>`
    mention or link, or inline code, which Slack would show broken or as raw markup."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if (amp := head.rfind("&")) > head.rfind(";"):
        head = head[:amp]
    if (lt := head.rfind("<")) > head.rfind(">"):
        head = head[:lt]
    if head.count("`") % 2:
        head = head[: head.rfind("`")]
    return head + "…"


def _t(value: object, limit: int = FIELD_CHARS) -> str:
    """`value` as text on one line (control characters as spaces), with the three characters Slack's mrkdwn reserves
    escaped (&, <, >), cut to `limit` characters as sent."""
    return _cut(_line(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), limit)


def _code(value: object, limit: int = FIELD_CHARS) -> str:
    """`value` as inline code, in which Slack applies no formatting (`*bold*`, `_italic_`, `~strike~`) and which
    shows a log key as the literal it is; its backticks, which would end the code, become ' (apostrophes)."""
    text = _t(_line(value).replace("`", "'").strip(), limit - 2)
    return f"`{text}`" if text else ""


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(text, SECTION_CHARS), "verbatim": True}


def _summary(payload: dict[str, Any], limit: int = FIELD_CHARS) -> str:
    """A finding's summary ("{key} p99 …", the analyzer's words after the customer's key) with the key as inline
    code; a summary that does not start with its key, or whose words could format, is code as a whole."""
    summary, key = _line(payload.get("summary") or ""), _line(payload.get("key") or "")
    rest = summary[len(key) :] if key.strip() and summary.startswith(key) else None
    if rest is None or any(c in rest for c in "*_~`"):
        return _code(summary, limit)
    words = _t(rest, limit // 2)
    return _code(key, limit - len(words)) + words


def _when_window(payload: dict[str, Any]) -> str:
    return _t(str(payload.get("window_start", "")).replace("T", " ")[:16]) + " UTC"


def _when(payload: dict[str, Any]) -> str:
    return _t(str(payload.get("scheduled_at", "")).replace("T", " ")[:16]) + " UTC"


# Who must act on each kind of reminder.
ACTOR_ROLE = {
    "touchpoint_due": "solutions_architect", "touchpoint_overdue": "solutions_architect",
    "stage_changed": "project_manager", "stage_stalled": "project_manager", "finding": "solutions_architect",
    "tech_review_due": "solutions_architect",
}  # fmt: skip


def mention(kind: str, payload: dict[str, Any], owners: dict[str, str]) -> str | None:
    """`<@U…>` (or the name) of the owner whose role must act, else the solutions architect; None without owners."""
    if kind == "handoff_pending":
        role = "technical_advisor" if payload.get("to") == "technical_advisor" else "implementation_engineer"
    else:
        role = ACTOR_ROLE.get(kind, "solutions_architect")
    owner = owners.get(role) or owners.get("solutions_architect")
    if not owner:
        return None
    return f"<@{owner}>" if SLACK_USER_ID.fullmatch(owner) else _t(owner)


def engagement_link(template: str, engagement_id: UUID | str) -> str | None:
    """The page a message's button opens (`OUTRIDER_ENGAGEMENT_URL` with the id filled in); None without one."""
    return template.replace("{engagement_id}", str(engagement_id)) if template else None


def build(
    kind: str,
    payload: dict[str, Any],
    *,
    name: str,
    customer: str,
    engagement_id: UUID | str,
    link: str | None,
    owners: dict[str, str] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and blocks: what, which customer, why now, and where to see the engagement."""
    what, why = describe(kind, payload)
    detail = {"type": "context", "elements": [_mrkdwn(why)]}
    return _message(_t(customer), _t(name), what, mention(kind, payload, owners or {}), detail, engagement_id, link)


def describe(kind: str, payload: dict[str, Any]) -> tuple[str, str]:
    """What a reminder says (mrkdwn, *bold* subject) and why now."""
    title = _t(payload.get("title") or "")
    get = {k: _t(v) for k, v in payload.items() if isinstance(v, str | int | float)}.get
    missing = _cut(", ".join(_t(m) for m in payload.get("missing") or []), SECTION_CHARS // 2)
    return {
        "touchpoint_due": (f"Touchpoint coming up: *{title}*", f"Scheduled for {_when(payload)}."),
        "touchpoint_overdue": (f"Touchpoint overdue: *{title}*",
                               f"It was due {_when(payload)} and has not been marked held."),
        "stage_changed": (f"Stage changed: {get('from')} → *{get('to')}*",
                          "Forced past: " + missing if payload.get("forced") else "All exit criteria were met."),
        "stage_stalled": (f"Stage stalled: *{get('stage')}*",
                          f"No stage change in {get('expected_days')} days, what the playbook expects."),
        "handoff_pending": (f"Hand-off waiting: {get('from')} → *{get('to')}*",
                            "Requested two days ago and not accepted yet."),
        "tech_review_due": (f"Tech-review decision due: *{get('gap')}*",
                            f"Decision needed by {get('decision_needed_by')}."),
        "finding": (f"New finding: {_summary(payload)}",
                    f"{_t(payload.get('log_type'), 40)} logs, window starting {_when_window(payload)}."),
    }.get(kind, (_t(kind), ""))  # fmt: skip


def cli_hint(engagement_id: UUID | str, what: str = "status") -> str:
    """Where an engineer sees the engagement when no page is configured: the CLI, which holds the API token."""
    return f"`outrider engagements {what} {engagement_id}`"


def _message(
    customer: str,
    name: str,
    what: str,
    who: str | None,
    detail: dict[str, Any],
    engagement_id: UUID | str,
    link: str | None,
) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and blocks: who and what, `detail` under it, then a button to the engagement's page, or (none
    configured: the tracker's API wants a token a browser does not have) the CLI command that shows it."""
    text = f"{customer} ({name}): {_plain(what)}" + (f" ({who})" if who else "")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(f"*{customer}* · {name}\n{what}" + (f"\n{who}" if who else ""))},
        detail,
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Engagement"}, "url": link}
        ]} if link else
        {"type": "context", "elements": [_mrkdwn("Status: " + cli_hint(engagement_id))]},
    ]  # fmt: skip
    return _cut(text, TEXT_CHARS), blocks


def _plain(what: str) -> str:
    """`what` for a notification, which shows mrkdwn's marks as typed."""
    return what.replace("*", "").replace("`", "")


def build_digest(items: list[dict[str, Any]], *, link_template: str) -> tuple[str, list[dict[str, Any]]]:
    """One message listing every routine reminder due for a channel today: what, why (when), who must act, and the
    engagement's page. Lines are packed into sections of Slack's size; past its 50 blocks the rest are counted."""
    lines = []
    for item in items:
        what, why = describe(item["kind"], item["payload"])
        who = mention(item["kind"], item["payload"], item.get("owners") or {})
        link = engagement_link(link_template, item["engagement_id"])
        line = _cut(f"• *{_t(item['customer'] or '')}* · {_t(item['name'] or '')}: {what} {why}", LINE_CHARS)
        line += (f" {who}" if who else "") + (f" <{link}|engagement>" if link else "")
        lines.append(_cut(line, SECTION_CHARS))
    header = f"Outrider daily digest: {len(items)} reminder{'s' if len(items) != 1 else ''}"
    sections: list[list[str]] = [[]]
    for line in lines:
        if sum(len(x) + 1 for x in sections[-1]) + len(line) > SECTION_CHARS:
            sections.append([])
        sections[-1].append(line)
    shown = sections[: MAX_BLOCKS - 2]
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header}}]
    blocks += [{"type": "section", "text": _mrkdwn("\n".join(section))} for section in shown]
    rest = len(lines) - sum(len(section) for section in shown)
    if rest:
        blocks.append({"type": "context", "elements": [_mrkdwn(f"… and {rest} more.")]})
    return _cut(header + "\n" + "\n".join(lines), TEXT_CHARS), blocks


FINDINGS_SHOWN = 10  # a group lists this many findings; the rest are counted, linked to the tracker's list


def build_findings(
    payloads: list[dict[str, Any]],
    *,
    name: str,
    customer: str,
    engagement_id: UUID | str,
    link: str | None,
    owners: dict[str, str] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """One message for a group of an engagement's findings: the first few, each with its log type and window, how
    many more (and where to see them all), and the engagement's page."""
    lines = [
        f"• {_summary(p)} ({_t(p.get('log_type'), 40)}, window {_when_window(p)})" for p in payloads[:FINDINGS_SHOWN]
    ]
    if len(payloads) > FINDINGS_SHOWN:
        more = len(payloads) - FINDINGS_SHOWN
        everything = f"<{link}|{more} more>." if link else f"{more} more: {cli_hint(engagement_id, 'findings')}."
        lines.append("… and " + everything)
    detail = {"type": "section", "text": _mrkdwn("\n".join(lines))}
    who = mention("finding", {}, owners or {})
    return _message(_t(customer), _t(name), f"{len(payloads)} new findings", who, detail, engagement_id, link)
