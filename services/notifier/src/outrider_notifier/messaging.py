"""Slack Block Kit messages for reminders (pure: what to say, apart from sending it).

Every value that comes from people or logs (titles, names, customers, log keys) goes through `_t`: Slack reads `<…>`
in message text as a control sequence, so an unescaped title `<!channel>` would notify everyone in the channel and
`<https://…|click here>` would show a disguised link.
"""

import re
from typing import Any

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


def build(
    kind: str,
    payload: dict[str, Any],
    *,
    name: str,
    customer: str,
    status_url: str,
    owners: dict[str, str] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and blocks: what, which customer, why now, and a link to the engagement's status."""
    title = _t(payload.get("title") or "")
    get = {k: _t(v) for k, v in payload.items() if isinstance(v, str | int | float)}.get
    missing = ", ".join(_t(m) for m in payload.get("missing") or [])
    what, why = {
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
    }.get(kind, (kind, ""))  # fmt: skip
    detail = {"type": "context", "elements": [{"type": "mrkdwn", "text": why}]}
    return _message(_t(customer), _t(name), what, mention(kind, payload, owners or {}), detail, status_url)


def _message(
    customer: str, name: str, what: str, who: str | None, detail: dict[str, Any], status_url: str
) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and blocks: who and what, `detail` under it, the button to the engagement's status."""
    text = f"{customer} ({name}): {what.replace('*', '')}" + (f" ({who})" if who else "")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"*{customer}* · {name}\n{what}" + (f"\n{who}" if who else "")}},
        detail,
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Engagement status"}, "url": status_url}
        ]},
    ]  # fmt: skip
    return text, blocks


def build_digest(items: list[dict[str, Any]], *, tracker_url: str) -> tuple[str, list[dict[str, Any]]]:
    """One message listing every routine reminder due for a channel today."""
    lines = []
    for item in items:
        text, _ = build(item["kind"], item["payload"], name=item["name"] or "", customer=item["customer"] or "",
                        status_url="")  # fmt: skip
        lines.append(f"• {text} <{tracker_url}/v1/engagements/{item['engagement_id']}/status|status>")
    header = f"Outrider daily digest: {len(items)} reminder{'s' if len(items) != 1 else ''}"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header}}]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines[i : i + 20])}}
               for i in range(0, len(lines), 20)]  # fmt: skip
    return header + "\n" + "\n".join(lines), blocks


FINDINGS_SHOWN = 10  # a group lists this many findings; the rest are counted, linked to the tracker's list


def build_findings(
    payloads: list[dict[str, Any]],
    *,
    name: str,
    customer: str,
    status_url: str,
    findings_url: str,
    owners: dict[str, str] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """One message for a group of an engagement's findings: the first few, each with its log type and window, how
    many more (linked to the engagement's findings list), and the link to its status."""
    lines = [
        f"• *{_t(str(p.get('summary', ''))[:200])}* ({_t(p.get('log_type'))}, window {_when_window(p)})"
        for p in payloads[:FINDINGS_SHOWN]
    ]
    if len(payloads) > FINDINGS_SHOWN:
        lines.append(f"… and <{findings_url}|{len(payloads) - FINDINGS_SHOWN} more>.")
    detail = {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}
    who = mention("finding", {}, owners or {})
    return _message(_t(customer), _t(name), f"{len(payloads)} new findings", who, detail, status_url)
