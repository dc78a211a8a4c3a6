"""`outrider engagements …`: open engagements, move them through their stages, and query them as tables."""

from datetime import timedelta
from typing import Annotated, Any, get_args

import typer
from rich.table import Column, Table
from rich.text import Text

import logparse
from outrider import records
from outrider.stats import views
from outrider.stats.cli import CompareSortOpt, FormatOpt, LimitOpt, PrintFieldsOpt, SortOpt
from outrider.stats.render import OutputFormat, Section, emit_all, printable, stdout_console
from outrider.tracker_api import (
    PAGE_MAX,
    TRACKER,
    Conflict,
    EngagementArg,
    TokenOption,
    TrackerOption,
    call,
    console,
    engagement_url,
    given,
    shown,
    uuid_id,
)
from outrider_common.events import FindingRule
from outrider_tracker.engagement.models import Destination, EngagementStatus, Role
from outrider_tracker.profile.models import REQUIRED_FOR_ADVISOR

app = typer.Typer(help="Open engagements, move them through their stages, keep their records, query them.",
                  no_args_is_help=True)  # fmt: skip
app.add_typer(records.touchpoints, name="touchpoints")
app.add_typer(records.risks, name="risks")
app.add_typer(records.issues, name="issues")
app.add_typer(records.handoffs, name="handoffs")
app.add_typer(records.tokens, name="tokens")
app.add_typer(records.tech_reviews, name="tech-reviews")


@app.command("list")
def list_engagements(
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
    stage: Annotated[str | None, typer.Option(help="Only engagements in this stage.")] = None,
    playbook: Annotated[str | None, typer.Option(help="Only engagements on this playbook.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only those with an overdue touchpoint.")] = False,
    owner: Annotated[str | None, typer.Option(help="Only those this person owns in any role.")] = None,
    target: Annotated[Destination | None, typer.Option(help="Only those going to this destination.")] = None,
    state: Annotated[
        EngagementStatus | None, typer.Option("--status", help="Only active, paused or closed ones.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=PAGE_MAX, help="At most this many.")] = 100,
) -> None:
    """Engagements, newest first."""
    params = given(
        stage=stage,
        playbook_id=playbook,
        overdue=overdue or None,
        owner=owner,
        target=target,
        status=state,
        limit=limit,
    )
    table = Table("customer", "name", "playbook", "stage", "status")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=36))  # whole, to paste into `status ID`
    for e in call("GET", f"{tracker}/v1/engagements", token, params=params):
        table.add_row(e["id"], e["customer"], e["name"], e["playbook_id"], e["stage"], e["status"])
    console.print(table)


@app.command()
def status(engagement_id: EngagementArg, tracker: TrackerOption = TRACKER, token: TokenOption = None) -> None:
    """Where is this customer: stage, checklist, what blocks the next stage, health, top endpoints."""
    s = call("GET", engagement_url(tracker, engagement_id, "status"), token)
    e, stage = s["engagement"], s["stage"]
    # A paused or closed engagement reads like an active one below: say so in the first line, not to be missed.
    state = ("" if e["status"] == "active" else f" · {e['status'].upper()}", "bold red")
    console.print(Text.assemble((e["customer"], "bold"), f" · {e['name']} · {s['playbook']}", state))
    console.print(Text.assemble("Stage: ", (stage["name"], "bold"),
                                f", {stage['days_in_stage']:.1f} of {stage['expected_days']} days",
                                (" (stalled)", "red") if stage["stalled"] else ""))  # fmt: skip
    console.print(f"Health: {s['health']}/100 " + "; ".join(s["health_reasons"]))
    checklist = Table("done", "item", "how", Column("id (to tick)", no_wrap=True))
    for item in s["checklist"]:
        missing = item.get("missing") or []
        how = item["satisfied_by"] or (f"{item['done_by']}" if item["done"] else "")
        how = how or ("no logs yet of " + ", ".join(missing) if missing else "")
        checklist.add_row(
            "✓" if item["done"] else "·", item["title"], how, "(from data)" if item["auto"] else item["id"]
        )
    console.print(checklist)
    if s["blocking"]:
        console.print("Blocking the next stage: " + "; ".join(s["blocking"]))
    if t := s["next_touchpoint"]:
        console.print(f"Next touchpoint: {t['title']}, {shown(t['scheduled_at'])} ({t['id']})")
    for t in s["overdue_touchpoints"]:
        console.print(Text(f"Overdue touchpoint: {t['title']}, {shown(t['scheduled_at'])} ({t['id']})", "red"))
    for r in s["open_risks"]:
        console.print(f"Open risk: {r['title']} ({r['likelihood']} likelihood, {r['impact']} impact)")
    for i in s["open_issues"]:
        console.print(f"Open issue: {i['title']} ({i['severity']})")
    if not s["requests_counted"]:
        console.print(f"No requests counted yet: ship logs with a token from `tokens mint {e['id']}`.")
        return
    top = Table("key", "count", "p99 ms", "%fail", "score", title=f"{s['requests_counted']:,} requests counted")
    for k in s["top_keys"]:
        top.add_row(
            printable(k["key"]), f"{k['count']:,}", f"{k['p99_ms']:.1f}", f"{k['perc_failed']:.2f}", f"{k['score']:.0f}"
        )
    console.print(top)


@app.command()
def findings(
    engagement_id: EngagementArg,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
    rule: Annotated[FindingRule | None, typer.Option(help="Only findings of this rule.")] = None,
    log_type: Annotated[str | None, typer.Option(help="production_json, api_json, gitaly or sidekiq.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=PAGE_MAX, help="At most this many, newest window first.")] = 50,
) -> None:
    """What the analyzer found in the engagement's logs: rule, key, window and the figures that tripped it."""
    params = given(rule=rule, log_type=log_type, limit=limit)
    page = call("GET", engagement_url(tracker, engagement_id, "findings"), token, params=params)
    table = Table("window (UTC)", "rule", "log type", "key", "figures",
                  title=f"{len(page['findings'])} of {page['total']:,} findings")  # fmt: skip
    for f in page["findings"]:
        figures = ", ".join(f"{k} {v:g}" for k, v in f["figures"].items())
        table.add_row(f["window_start"][:16].replace("T", " "), f["rule"], f["log_type"], printable(f["key"]), figures)
    console.print(table)


# `outrider stats`' column names → the stats API's fields.
API_FIELDS = {
    "key": "key", "count": "count", "rps": "rps", "p99": "p99_ms", "p95": "p95_ms", "median": "median_ms",
    "max": "max_ms", "min": "min_ms", "stddev": "stddev_ms", "score": "score", "perc_failed": "perc_failed",
    "failed": "failed", "db": "db_avg_ms", "gitaly": "gitaly_avg_ms", "redis": "redis_avg_ms", "cpu": "cpu_avg_ms",
    "queue": "queue_avg_ms",
}  # fmt: skip
COMPONENTS = ("db", "gitaly", "redis", "cpu", "queue")


LogTypeOption = Annotated[
    str | None, typer.Option(help="production_json, api_json, gitaly or sidekiq. Default: a table each.")
]
SKETCH_NOTE = "percentiles from the stored sketches (within 1 %)"


def _view_error(exc: views.ViewError) -> typer.Exit:
    console.print(f"error: {exc}", style="red", soft_wrap=True)
    return typer.Exit(2)


def _row(k: dict[str, Any]) -> dict[str, Any]:
    """A stats API key (or TOTAL) as an `outrider stats` table row."""
    return {name: k[api] for name, api in API_FIELDS.items()}


def _keys(
    tracker: str, token: str | None, engagement_id: str, most: int | None = None, **params: Any
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, float]:
    """The first `most` keys (all when None) in the API's order as rows, page after page; the TOTAL row (None
    when the range has no requests); and the time span the figures cover."""
    url = engagement_url(tracker, engagement_id, "stats")
    query = {k: v for k, v in params.items() if v}
    rows: list[dict[str, Any]] = []
    while True:
        size = 1000 if most is None else min(1000, most - len(rows))  # 1000: the API's largest page
        page = call("GET", url, token, params={**query, "limit": size, "offset": len(rows)})
        rows += [_row(k) for k in page["keys"]]
        wanted = page["key_count"] if most is None else min(most, page["key_count"])
        if len(rows) >= wanted or not page["keys"]:
            return rows, _row(page["totals"][0]) if page["totals"] else None, page["span_seconds"]


@app.command()
def stats(
    engagement_id: EngagementArg,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
    log_type: LogTypeOption = None,
    since: Annotated[
        str | None, typer.Option(help="From this time, inclusive (ISO 8601, e.g. 2024-05-01T10:00Z).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to this time, exclusive (ISO 8601).")] = None,
    sort_by: SortOpt = "score",
    limit: LimitOpt = 10,
    print_fields: PrintFieldsOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """What the analyzer has counted: the `outrider stats` table (same columns, options and formats) from the
    engagement's stored statistics, over any time range. Percentiles come from sketches, within 1 %."""
    try:
        views.check_log_type(log_type)
        sort_field = views.resolve_field(sort_by, list(API_FIELDS))
        fields = [
            views.resolve_field(f, list(views.STAT_COLUMNS)) for f in (print_fields or "").split(",") if f.strip()
        ]
    except views.ViewError as exc:
        raise _view_error(exc) from None
    docs = []
    for lt in (log_type,) if log_type else logparse.LOG_TYPES:
        rows, total, span = _keys(tracker, token, engagement_id, limit, log_type=lt, since=since, until=until,
                                  sort_by=API_FIELDS[sort_field])  # fmt: skip
        if total is None:
            continue
        carried = [c for c in COMPONENTS if total[c]]
        columns = [views.key_column(lt), *(views.STAT_COLUMNS[f] for f in fields or [*views.DEFAULT_FIELDS, *carried])]
        note = f"{total['count']:,} requests over {timedelta(seconds=round(span))} of logs; {SKETCH_NOTE}"
        meta = {"engagement_id": engagement_id, "log_type": lt, "since": since, "until": until, "span_seconds": span}
        docs.append(([Section(None, columns, rows, total, notes=[note])], meta))
    if not docs:
        console.print("no statistics for this engagement" + (" in that range" if since or until else " yet"))
        return
    emit_all(docs, fmt, stdout_console())


def _time_range(text: str) -> tuple[str | None, str | None]:
    since, dots, until = text.partition("..")
    if not dots:
        raise typer.BadParameter(f"{text!r} is not SINCE..UNTIL (either side may be empty, e.g. ..2024-05-01T12:00Z)")
    return since.strip() or None, until.strip() or None


@app.command()
def compare(
    engagement_id: EngagementArg,
    a: Annotated[str, typer.Argument(help="Range A as SINCE..UNTIL, ISO 8601, either side may be empty.")],
    b: Annotated[str, typer.Argument(help="Range B, the same way ('..' for everything).")],
    other: Annotated[
        str | None,
        typer.Option(
            "--with",
            callback=lambda v: v and uuid_id(v),
            help="Take B from this engagement instead (e.g. a pilot's baseline).",
        ),
    ] = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
    log_type: LogTypeOption = None,
    sort_by: CompareSortOpt = "score",
    limit: LimitOpt = 10,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Two time ranges of the engagement's stored statistics (before and after a change), or one range of two
    engagements, side by side per key with deltas, then the keys only one side has: `outrider stats compare` on
    what the analyzer counted."""
    try:
        views.check_log_type(log_type)
    except views.ViewError as exc:
        raise _view_error(exc) from None
    (since_a, until_a), (since_b, until_b) = _time_range(a), _time_range(b)
    docs = []
    for lt in (log_type,) if log_type else logparse.LOG_TYPES:
        rows_a, total_a, _ = _keys(tracker, token, engagement_id, log_type=lt, since=since_a, until=until_a)
        rows_b, total_b, _ = _keys(tracker, token, other or engagement_id, log_type=lt, since=since_b, until=until_b)
        if total_a is None and total_b is None:
            continue
        by_key = ({r["key"]: r for r in rows_a}, total_a), ({r["key"]: r for r in rows_b}, total_b)
        try:
            sections = views.compare_rows(lt, *by_key, sort_by, limit)
        except views.ViewError as exc:
            raise _view_error(exc) from None
        sections[0].notes.append(f"Both sides: {SKETCH_NOTE}.")
        meta = {"log_type": lt, "a": {"engagement_id": engagement_id, "since": since_a, "until": until_a},
                "b": {"engagement_id": other or engagement_id, "since": since_b, "until": until_b}}  # fmt: skip
        docs.append((sections, meta))
    if not docs:
        console.print("no statistics on either side")
        return
    emit_all(docs, fmt, stdout_console())


@app.command()
def portfolio(tracker: TrackerOption = TRACKER, token: TokenOption = None) -> None:
    """Engagements per stage, overdue touchpoints, stalled engagements."""
    p = call("GET", f"{tracker}/v1/portfolio", token)
    table = Table("playbook", "stage", "engagements")
    for c in p["by_stage"]:
        table.add_row(c["playbook_id"], c["stage"], str(c["count"]))
    console.print(table)
    console.print(f"Overdue touchpoints: {p['overdue_touchpoints']}   Stalled: {len(p['stalled'])}")
    if p["stalled"]:
        stalled = Table("stalled", "stage", "days in stage", "days since a change", "why")
        for e in p["stalled"]:
            why = {"stage_overdue": "longer in its stage than expected", "no_change": "no change"}
            stalled.add_row(e["name"], e["stage"], f"{e['days_in_stage']:.1f} of {e['expected_days']}",
                            f"{e['days_since_change']:.1f}", ", ".join(why[w] for w in e["why"]))  # fmt: skip
        console.print(stalled)


@app.command()
def advance(
    engagement_id: EngagementArg,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
    force: Annotated[bool, typer.Option(help="Skip unmet exit criteria (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
) -> None:
    """Move an engagement to its next stage (refused with what is missing)."""
    body = {"force": force, "reason": reason}
    change = call("POST", engagement_url(tracker, engagement_id, "advance"), token, json=body)
    forced = " (forced)" if change["forced"] else ""
    console.print(Text.assemble(f"{change['from_stage']} → ", (change["to_stage"], "bold"), forced))


ROLES = get_args(Role)


def _owners(pairs: list[str] | None) -> dict[str, str | None]:
    """`--owner ROLE=WHO` options as a mapping; `ROLE=` (nobody) removes the role's owner."""
    owners: dict[str, str | None] = {}
    for pair in pairs or []:
        role, eq, who = pair.partition("=")
        if not eq or role not in ROLES:
            raise typer.BadParameter(
                f"{pair!r} is not ROLE=WHO with ROLE one of {', '.join(ROLES)}", param_hint="--owner"
            )
        owners[role] = who.strip() or None
    return owners


OwnerOpt = Annotated[
    list[str] | None,
    typer.Option("--owner", metavar="ROLE=WHO", show_default=False,
                 help="An owner: a Slack user id (U…, mentioned in reminders) or a name; repeat for several roles; "
                 f"ROLE= removes one. Roles: {', '.join(ROLES)}."),
]  # fmt: skip
UsersOpt = Annotated[int | None, typer.Option(min=0, help="Developers using the platform today.")]
AnticipatedOpt = Annotated[int | None, typer.Option(min=0, help="Developers expected on it after the rollout.")]
TargetOpt = Annotated[Destination | None, typer.Option(help="Where the platform will run.")]
ChannelOpt = Annotated[
    str | None, typer.Option(help="Slack channel for its reminders (the notifier's default when unset).")
]


@app.command("open")
def open_engagement(
    customer: str,
    name: Annotated[str, typer.Argument(help="What the engagement is, e.g. 'GitLab 10k reference architecture'.")],
    playbook: Annotated[str, typer.Option(help="The playbook it follows (its stages and checklists).")] = (
        "gitlab-reference-architecture"
    ),
    channel: ChannelOpt = None,
    owner: OwnerOpt = None,
    target: TargetOpt = None,
    users: UsersOpt = None,
    anticipated_users: AnticipatedOpt = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Open an engagement at its playbook's first stage; prints its id. Then `tokens mint` gives the customer's
    shipper its upload token."""
    owners = {role: who for role, who in _owners(owner).items() if who}
    body = {"customer": customer, "name": name, "playbook_id": playbook, "owners": owners,
            **given(slack_channel=channel, target_destination=target, current_users=users,
                    anticipated_users=anticipated_users)}  # fmt: skip
    e = call("POST", f"{tracker}/v1/engagements", token, json=body)
    console.print(Text.assemble("Opened ", (e["id"], "bold"), f": {e['customer']} · {e['name']}, stage {e['stage']}"))
    console.print(f"Upload token for its shipper: outrider engagements tokens mint {e['id']}")


@app.command("set")
def set_engagement(
    engagement_id: EngagementArg,
    state: Annotated[
        EngagementStatus | None,
        typer.Option(
            "--status",
            help="paused: reminders wait; closed: pending reminders are withdrawn and its upload tokens revoked; "
            "active: reminders resume (a reopened engagement's scheduled touchpoints are reminded again; mint it new "
            "upload tokens).",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    customer: Annotated[str | None, typer.Option(help="A new customer name.")] = None,
    channel: ChannelOpt = None,
    owner: OwnerOpt = None,
    target: TargetOpt = None,
    users: UsersOpt = None,
    anticipated_users: AnticipatedOpt = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Change an engagement: pause, close or reactivate it, rename it, set its channel, owners, size or target.
    Owners given are added to (or, with ROLE=, removed from) the ones it has."""
    changes = given(
        status=state,
        name=name,
        customer=customer,
        slack_channel=channel,
        target_destination=target,
        current_users=users,
        anticipated_users=anticipated_users,
    )
    owners = _owners(owner)
    if not changes and not owners:
        raise typer.BadParameter("nothing to change: give at least one option (see --help)")
    url = engagement_url(tracker, engagement_id)
    for _ in range(3):  # someone else's change in between (409): read it again and apply these on top
        current = call("GET", url, token)
        body = {"version": current["version"], **changes}
        if owners:
            merged = {**current["owners"], **owners}
            body["owners"] = {role: who for role, who in merged.items() if who}
        try:
            e = call("PATCH", url, token, conflict=True, json=body)
        except Conflict:
            continue
        console.print(f"{e['customer']} · {e['name']}: {e['status']}, version {e['version']}")
        return
    console.print("409: the engagement kept changing under this command (3 tries); run it again", style="red")
    raise typer.Exit(1)


@app.command()
def tick(
    engagement_id: EngagementArg,
    item_id: Annotated[str, typer.Argument(help="The item's id, as `status` shows it.")],
    undo: Annotated[bool, typer.Option("--undo", help="Untick it.")] = False,
    note: Annotated[str | None, typer.Option(help="Why or how, kept with the tick.")] = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    """Tick (or untick) an item of the current stage's checklist. Items checked from data tick themselves."""
    body = {"done": not undo, **given(note=note)}
    items = call("PUT", engagement_url(tracker, engagement_id, "checklist", item_id), token, json=body)
    item = next(i for i in items if i["id"] == item_id)
    left = [i["title"] for i in items if not i["done"]]
    console.print(f"{'✓' if item['done'] else '·'} {item['title']}")
    console.print(f"Still open in this stage: {'; '.join(left)}" if left else "Every item of this stage is done.")


@app.command(
    help="The technical design profile (what the customer runs); with --set, change fields of it. A hand-off to the "
    f"technical advisor needs {', '.join(REQUIRED_FOR_ADVISOR)}."
)
def profile(
    engagement_id: EngagementArg,
    changes: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="FIELD=VALUE",
            show_default=False,
            help="Change a field; lists comma-separated (code_hosts=GitLab 16.11,GitHub); FIELD= clears it. "
            "Repeat for several.",
        ),
    ] = None,
    tracker: TrackerOption = TRACKER,
    token: TokenOption = None,
) -> None:
    url = engagement_url(tracker, engagement_id, "profile")
    current = call("GET", url, token)
    if changes:
        body = {}  # only these fields: a PATCH leaves the others as they are, whoever changed them since the GET
        for change in changes:
            field, eq, value = change.partition("=")
            if not eq:
                raise typer.BadParameter(f"{change!r} is not FIELD=VALUE", param_hint="--set")
            listed = isinstance(current.get(field), list)  # an unknown field: the tracker's 422 names it
            body[field] = [v.strip() for v in value.split(",") if v.strip()] if listed else value.strip() or None
        current = call("PATCH", url, token, json=body)
    table = Table("field", "value", box=None)
    for field, value in current.items():
        shown_value = ", ".join(value) if isinstance(value, list) else "" if value is None else str(value)
        table.add_row(field, shown(value) if field == "updated_at" else shown_value)
    console.print(table)
