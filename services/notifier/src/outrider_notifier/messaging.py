"""Slack Block Kit messages for reminders (pure: what to say, apart from sending it).

Every value that comes from people or logs (titles, names, customers, log keys) goes through `_t`: Slack reads `<…>`
in message text as a control sequence, so an unescaped title `<!channel>` would notify everyone in the channel and
`<https://…|click here>` would show a disguised link.
"""

import re
from typing import Any
from uuid import UUID

SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{8,}")  # U024BE7LH; a name such as "Walter" is a name


def _t(value: object) -> str:
    """`value` as text, with the three characters Slack's mrkdwn reserves escaped (&, <, >)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
    detail = {"type": "context", "elements": [{"type": "mrkdwn", "text": why}]}
    return _message(_t(customer), _t(name), what, mention(kind, payload, owners or {}), detail, engagement_id, link)


def describe(kind: str, payload: dict[str, Any]) -> tuple[str, str]:
    """What a reminder says (mrkdwn, *bold* subject) and why now."""
    title = _t(payload.get("title") or "")
    get = {k: _t(v) for k, v in payload.items() if isinstance(v, str | int | float)}.get
    missing = ", ".join(_t(m) for m in payload.get("missing") or [])
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
        "finding": (f"New finding: *{get('summary', '')}*",
                    f"{get('log_type')} logs, window starting {_when_window(payload)}."),
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
    text = f"{customer} ({name}): {what.replace('*', '')}" + (f" ({who})" if who else "")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"*{customer}* · {name}\n{what}" + (f"\n{who}" if who else "")}},
        detail,
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Engagement"}, "url": link}
        ]} if link else
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Status: " + cli_hint(engagement_id)}]},
    ]  # fmt: skip
    return text, blocks


SECTION_CHARS = 3000  # Slack refuses a section whose text is longer
MAX_BLOCKS = 50  # nor a message of more blocks
LINE_CHARS = 600  # one digest line at most (a title may be long)


def build_digest(items: list[dict[str, Any]], *, link_template: str) -> tuple[str, list[dict[str, Any]]]:
    """One message listing every routine reminder due for a channel today: what, why (when), who must act, and the
    engagement's page. Lines are packed into sections of Slack's size; past its 50 blocks the rest are counted."""
    lines = []
    for item in items:
        what, why = describe(item["kind"], item["payload"])
        who = mention(item["kind"], item["payload"], item.get("owners") or {})
        link = engagement_link(link_template, item["engagement_id"])
        line = (f"• *{_t(item['customer'] or '')}* · {_t(item['name'] or '')}: {what} {why}"
                + (f" {who}" if who else ""))  # fmt: skip
        line = line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 1] + "…"
        lines.append(line + (f" <{link}|engagement>" if link else ""))
    header = f"Outrider daily digest: {len(items)} reminder{'s' if len(items) != 1 else ''}"
    sections: list[list[str]] = [[]]
    for line in lines:
        if sum(len(x) + 1 for x in sections[-1]) + len(line) > SECTION_CHARS:
            sections.append([])
        sections[-1].append(line)
    shown = sections[: MAX_BLOCKS - 2]
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header}}]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(section)}} for section in shown]
    rest = len(lines) - sum(len(section) for section in shown)
    if rest:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"… and {rest} more."}]})
    return header + "\n" + "\n".join(lines), blocks


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
        f"• *{_t(str(p.get('summary', ''))[:200])}* ({_t(p.get('log_type'))}, window {_when_window(p)})"
        for p in payloads[:FINDINGS_SHOWN]
    ]
    if len(payloads) > FINDINGS_SHOWN:
        more = len(payloads) - FINDINGS_SHOWN
        everything = f"<{link}|{more} more>." if link else f"{more} more: {cli_hint(engagement_id, 'findings')}."
        lines.append("… and " + everything)
    detail = {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}
    who = mention("finding", {}, owners or {})
    return _message(_t(customer), _t(name), f"{len(payloads)} new findings", who, detail, engagement_id, link)
