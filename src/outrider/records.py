"""`outrider engagements touchpoints|risks|issues|handoffs|tech-reviews|tokens …`: an engagement's records, listed
and changed through the tracker API. Each change prints the record's id (to refer to it later) and what the tracker
now holds."""

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Column, Table

from outrider.tracker_api import (
    TRACKER,
    WHEN_HELP,
    EngagementArg,
    TokenOption,
    TrackerOption,
    call,
    console,
    engagement_url,
    given,
    shown,
    uuid_id,
    when,
)
from outrider_tracker.handoff.models import Requirement, Team
from outrider_tracker.issue.models import Severity
from outrider_tracker.risk.models import Level, RiskStatus

TouchpointArg = Annotated[str, typer.Argument(callback=uuid_id, help="The touchpoint's id (`touchpoints list`).")]
RiskArg = Annotated[str, typer.Argument(callback=uuid_id, help="The risk's id (`risks list`).")]
IssueArg = Annotated[str, typer.Argument(callback=uuid_id, help="The issue's id (`issues list`).")]
HandoffArg = Annotated[str, typer.Argument(callback=uuid_id, help="The hand-off's id (`handoffs list`).")]
ReviewArg = Annotated[str, typer.Argument(callback=uuid_id, help="The request's id (`tech-reviews list`).")]
WhenArg = Annotated[datetime, typer.Argument(parser=when, help=WHEN_HELP, show_default=False)]


def _id_column() -> Column:
    return Column("id", no_wrap=True, min_width=36)  # whole, to paste into the next command


touchpoints = typer.Typer(help="Calls with the customer: schedule, reschedule, record as held, cancel.",
                          no_args_is_help=True)  # fmt: skip


@touchpoints.command("list")
def list_touchpoints(engagement_id: EngagementArg, tracker: TrackerOption = TRACKER, token: TokenOption = None) -> None:
    """Touchpoints by date, with their status and notes."""
    table = Table(_id_column(), "when", "title", "status", "attendees", "notes")
    for t in call("GET", engagement_url(tracker, engagement_id, "touchpoints"), token):
        when_ = shown(t["held_at"] or t["scheduled_at"])
        table.add_row(t["id"], when_, t["title"], t["status"], ", ".join(t["attendees"]), t["notes"] or "")
    console.print(table)


@touchpoints.command("add")
def add_touchpoint(
    engagement_id: EngagementArg,
    title: Annotated[str, typer.Argument(help="What the call is about.")],
    at: WhenArg,
    attendee: Annotated[list[str] | None, typer.Option(help="Who attends; repeat for several.")] = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Schedule a touchpoint; the notifier reminds the engagement's channel before it and if it goes unrecorded."""
    body = {"title": title, "scheduled_at": at.isoformat(), "attendees": attendee or []}
    t = call("POST", engagement_url(tracker, engagement_id, "touchpoints"), token, json=body)
    console.print(f"Scheduled {t['id']}: {t['title']}, {shown(t['scheduled_at'])}")


@touchpoints.command("held")
def touchpoint_held(
    engagement_id: EngagementArg,
    touchpoint_id: TouchpointArg,
    notes: Annotated[str | None, typer.Option(help="What was said and agreed.")] = None,
    held_at: Annotated[
        datetime | None, typer.Option("--at", parser=when, help="When it took place (default now). " + WHEN_HELP)
    ] = None,
    next_at: Annotated[
        datetime | None, typer.Option("--next", parser=when, help="Schedule the next one, same title. " + WHEN_HELP)
    ] = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Record that a touchpoint took place (its overdue reminder is withdrawn), optionally scheduling the next."""
    body = given(
        notes=notes, held_at=held_at and held_at.isoformat(), next_scheduled_at=next_at and next_at.isoformat()
    )
    t = call("POST", engagement_url(tracker, engagement_id, "touchpoints", touchpoint_id, "held"), token, json=body)
    console.print(f"Held {t['id']}: {t['title']}, {shown(t['held_at'])}")
    if next_at:  # the answer is the held one: find the next among the scheduled ones, to print its id
        listed = call("GET", engagement_url(tracker, engagement_id, "touchpoints"), token)
        scheduled = [
            n for n in listed if n["status"] == "scheduled" and datetime.fromisoformat(n["scheduled_at"]) == next_at
        ]
        for n in scheduled[-1:]:
            console.print(f"Scheduled {n['id']}: {n['title']}, {shown(n['scheduled_at'])}")


@touchpoints.command("move")
def move_touchpoint(
    engagement_id: EngagementArg,
    touchpoint_id: TouchpointArg,
    at: Annotated[datetime | None, typer.Option("--to", parser=when, help="The new time. " + WHEN_HELP)] = None,
    title: Annotated[str | None, typer.Option(help="A new title.")] = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Reschedule or rename a scheduled touchpoint; its reminders follow."""
    body = given(scheduled_at=at and at.isoformat(), title=title)
    if not body:
        raise typer.BadParameter("nothing to change: give --to, --title or both")
    t = call("PATCH", engagement_url(tracker, engagement_id, "touchpoints", touchpoint_id), token, json=body)
    console.print(f"Moved {t['id']}: {t['title']}, {shown(t['scheduled_at'])}")


@touchpoints.command("cancel")
def cancel_touchpoint(
    engagement_id: EngagementArg,
    touchpoint_id: TouchpointArg,
    reason: Annotated[str, typer.Option(help="Why it will not take place (kept in the audit trail).")],
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Cancel a scheduled touchpoint; its reminders are withdrawn."""
    url = engagement_url(tracker, engagement_id, "touchpoints", touchpoint_id, "cancel")
    t = call("POST", url, token, json={"reason": reason})
    console.print(f"Cancelled {t['id']}: {t['title']}")


risks = typer.Typer(help="The risk log: open, promote a finding, mitigate, close.", no_args_is_help=True)


@risks.command("list")
def list_risks(engagement_id: EngagementArg, tracker: TrackerOption = TRACKER, token: TokenOption = None) -> None:
    """Every risk, with its levels, owner and status."""
    table = Table(_id_column(), "title", "likelihood", "impact", "owner", "status", "mitigation")
    for r in call("GET", engagement_url(tracker, engagement_id, "risks"), token):
        table.add_row(r["id"], r["title"], r["likelihood"], r["impact"], r["owner"] or "", r["status"],
                      r["mitigation"] or "")  # fmt: skip
    console.print(table)


LevelOpt = Annotated[Level, typer.Option(help="low, medium or high.")]


@risks.command("add")
def add_risk(
    engagement_id: EngagementArg,
    title: str,
    likelihood: LevelOpt,
    impact: LevelOpt,
    mitigation: Annotated[str | None, typer.Option(help="What is being done about it.")] = None,
    owner: Annotated[str | None, typer.Option(help="Who looks after it.")] = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Open a risk (a high one lowers the engagement's health until it is mitigated or closed)."""
    body = given(title=title, likelihood=likelihood, impact=impact, mitigation=mitigation, owner=owner)
    r = call("POST", engagement_url(tracker, engagement_id, "risks"), token, json=body)
    console.print(f"Opened risk {r['id']}: {r['title']} ({r['likelihood']} likelihood, {r['impact']} impact)")


@risks.command("promote")
def promote_finding(
    engagement_id: EngagementArg,
    rule: Annotated[str, typer.Argument(help="The finding's rule (`outrider engagements findings`).")],
    key: Annotated[str, typer.Argument(help="The finding's key, e.g. Projects::MergeRequestsController#show.")],
    likelihood: LevelOpt = "high",
    impact: LevelOpt = "medium",
    owner: Annotated[str | None, typer.Option(help="Who looks after it.")] = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Put an analyzer finding on the risk log, with its figures (promoting it again gives the same risk)."""
    body = given(rule=rule, key=key, likelihood=likelihood, impact=impact, owner=owner)
    r = call("POST", engagement_url(tracker, engagement_id, "risks", "from-finding"), token, json=body)
    console.print(f"Risk {r['id']}: {r['title']}")


@risks.command("set")
def set_risk(
    engagement_id: EngagementArg,
    risk_id: RiskArg,
    status: Annotated[RiskStatus | None, typer.Option(help="mitigated or closed take it off the open list.")] = None,
    likelihood: Annotated[Level | None, typer.Option(help="low, medium or high.")] = None,
    impact: Annotated[Level | None, typer.Option(help="low, medium or high.")] = None,
    mitigation: Annotated[str | None, typer.Option(help="What is being done about it.")] = None,
    owner: Annotated[str | None, typer.Option(help="Who looks after it.")] = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Change a risk: its status, levels, mitigation or owner."""
    body = given(status=status, likelihood=likelihood, impact=impact, mitigation=mitigation, owner=owner)
    if not body:
        raise typer.BadParameter("nothing to change: give --status, --likelihood, --impact, --mitigation or --owner")
    r = call("PATCH", engagement_url(tracker, engagement_id, "risks", risk_id), token, json=body)
    console.print(f"Risk {r['id']}: {r['title']}, {r['status']} ({r['likelihood']} likelihood, {r['impact']} impact)")


issues = typer.Typer(help="The issues log: what is going wrong, and how it was resolved.", no_args_is_help=True)


@issues.command("list")
def list_issues(engagement_id: EngagementArg, tracker: TrackerOption = TRACKER, token: TokenOption = None) -> None:
    """The issues log, open first."""
    table = Table(_id_column(), "title", "severity", "owner", "status", "resolution")
    for i in call("GET", engagement_url(tracker, engagement_id, "issues"), token):
        table.add_row(i["id"], i["title"], i["severity"], i["owner"] or "", i["status"], i["resolution"] or "")
    console.print(table)


@issues.command("add")
def add_issue(
    engagement_id: EngagementArg,
    title: str,
    severity: Annotated[Severity, typer.Option(help="low, medium, high or critical.")],
    owner: Annotated[str | None, typer.Option(help="Who is on it.")] = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Log an issue."""
    i = call("POST", engagement_url(tracker, engagement_id, "issues"), token,
             json=given(title=title, severity=severity, owner=owner))  # fmt: skip
    console.print(f"Logged issue {i['id']}: {i['title']} ({i['severity']})")


@issues.command("resolve")
def resolve_issue(
    engagement_id: EngagementArg,
    issue_id: IssueArg,
    resolution: Annotated[str, typer.Argument(help="How it was resolved.")],
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Resolve an issue (the same resolution again changes nothing)."""
    url = engagement_url(tracker, engagement_id, "issues", issue_id, "resolve")
    i = call("POST", url, token, json={"resolution": resolution})
    console.print(f"Resolved {i['id']}: {i['title']}")


handoffs = typer.Typer(help="Hand the engagement from one team to the next, and accept it.", no_args_is_help=True)


@handoffs.command("list")
def list_handoffs(engagement_id: EngagementArg, tracker: TrackerOption = TRACKER, token: TokenOption = None) -> None:
    """Hand-offs, with who handed to whom and whether it was accepted."""
    table = Table(_id_column(), "from", "to", "status", "created", "accepted", "notes")
    for h in call("GET", engagement_url(tracker, engagement_id, "handoffs"), token):
        table.add_row(h["id"], h["from_team"], h["to_team"], h["status"], shown(h["created_at"]),
                      shown(h["accepted_at"]), h["notes"] or "")  # fmt: skip
    console.print(table)


@handoffs.command("add")
def add_handoff(
    engagement_id: EngagementArg,
    from_team: Annotated[Team, typer.Argument(help="The team handing over.")],
    to_team: Annotated[Team, typer.Argument(help="The team taking over.")],
    notes: Annotated[str | None, typer.Option(help="What the next team should know.")] = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Hand the engagement to another team (refused with the fields that team still needs, e.g. owners or size)."""
    body = given(from_team=from_team, to_team=to_team, notes=notes)
    h = call("POST", engagement_url(tracker, engagement_id, "handoffs"), token, json=body)
    console.print(f"Handed off {h['id']}: {h['from_team']} → {h['to_team']}, waiting for {h['to_team']} to accept")


@handoffs.command("accept")
def accept_handoff(
    engagement_id: EngagementArg, handoff_id: HandoffArg, tracker: TrackerOption = TRACKER, token: TokenOption = None
) -> None:
    """Accept a hand-off as the receiving team (again: nothing changes)."""
    h = call("POST", engagement_url(tracker, engagement_id, "handoffs", handoff_id, "accept"), token)
    console.print(f"Accepted {h['id']}: {h['from_team']} → {h['to_team']}")


tokens = typer.Typer(help="Upload tokens: what `outrider ship` sends to put logs on this engagement.",
                     no_args_is_help=True)  # fmt: skip


@tokens.command("list")
def list_tokens(engagement_id: EngagementArg, tracker: TrackerOption = TRACKER, token: TokenOption = None) -> None:
    """The engagement's upload tokens (names and dates; a token itself is shown only when minted)."""
    table = Table("id", "name", "created", "revoked")
    for t in call("GET", engagement_url(tracker, engagement_id, "tokens"), token):
        table.add_row(t["id"], t["name"], shown(t["created_at"]), shown(t["revoked_at"]))
    console.print(table)


@tokens.command("mint")
def mint_token(
    engagement_id: EngagementArg,
    name: Annotated[str, typer.Option(help="What ships with it, e.g. the host (to tell tokens apart).")] = "shipper",
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Mint an upload token for the customer's shipper. It is printed this once; the tracker keeps only a digest."""
    t = call("POST", engagement_url(tracker, engagement_id, "tokens"), token, json={"name": name})
    console.print(f"Upload token {t['id']} ({t['name']}), shown this once:\n{t['token']}")
    console.print(
        f"Ship with it: OUTRIDER_SHIP_TOKEN=<token> outrider ship --engagement {engagement_id} "
        "--url <ingest URL> [FILES]"
    )


@tokens.command("revoke")
def revoke_token(
    engagement_id: EngagementArg, token_id: str, tracker: TrackerOption = TRACKER, token: TokenOption = None
) -> None:
    """Revoke an upload token: its next upload gets 401."""
    call("DELETE", engagement_url(tracker, engagement_id, "tokens", token_id), token)
    console.print(f"Revoked {token_id}")


tech_reviews = typer.Typer(help="Gaps that need a product or engineering decision, and the decisions.",
                           no_args_is_help=True)  # fmt: skip


@tech_reviews.command("list")
def list_tech_reviews(
    engagement_id: EngagementArg, tracker: TrackerOption = TRACKER, token: TokenOption = None
) -> None:
    """Tech-review requests, with the date a decision is needed by and the decision."""
    table = Table(_id_column(), "gap", "requirement", "needed by", "status", "decision")
    for r in call("GET", engagement_url(tracker, engagement_id, "tech-reviews"), token):
        table.add_row(r["id"], r["gap"], r["requirement"], r["decision_needed_by"], r["status"], r["decision"] or "")
    console.print(table)


@tech_reviews.command("add")
def add_tech_review(
    engagement_id: EngagementArg,
    gap: Annotated[str, typer.Argument(help="What the product does not do that the customer needs.")],
    needed_by: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="The day a decision is needed by.", show_default=False)
    ],
    requirement: Annotated[Requirement, typer.Option(help="A new requirement or an existing one.")],
    expectation: Annotated[str, typer.Option(help="What the customer expects.")],
    consequence: Annotated[str, typer.Option(help="What happens if it is not met.")],
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Request a tech review of a gap."""
    body = {"gap": gap, "decision_needed_by": needed_by.date().isoformat(), "requirement": requirement,
            "customer_expectation": expectation, "consequence_if_unmet": consequence}  # fmt: skip
    r = call("POST", engagement_url(tracker, engagement_id, "tech-reviews"), token, json=body)
    console.print(f"Requested {r['id']}: {r['gap']}, decision needed by {r['decision_needed_by']}")


@tech_reviews.command("decide")
def decide_tech_review(
    engagement_id: EngagementArg,
    review_id: ReviewArg,
    decision: Annotated[str, typer.Argument(help="What was decided.")],
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Record the decision on a tech-review request (the same decision again changes nothing)."""
    url = engagement_url(tracker, engagement_id, "tech-reviews", review_id, "decision")
    r = call("POST", url, token, json={"decision": decision})
    console.print(f"Decided {r['id']}: {r['decision']}")
