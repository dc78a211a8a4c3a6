"""`outrider engagements …`: the common tracker queries as tables."""

from datetime import timedelta
from typing import Annotated, Any

import httpx
import typer
from rich.table import Column, Table
from rich.text import Text

import logparse
from outrider.stats import views
from outrider.stats.cli import CompareSortOpt, FormatOpt, LimitOpt, PrintFieldsOpt, SortOpt
from outrider.stats.render import OutputFormat, Section, emit_all, stdout_console
from outrider.up import ADMIN_TOKEN_FILE
from outrider_common.events import FindingRule

app = typer.Typer(help="Query and move engagements through the tracker API.", no_args_is_help=True)
# Names, keys and reasons are data (`[id]` in one is text, not a style); piped, tables keep their natural width.
console = stdout_console(markup=False)
TrackerOption = Annotated[
    str, typer.Option("--tracker", envvar="OUTRIDER_TRACKER_URL", help="Base URL of the tracker API.")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="OUTRIDER_API_TOKEN",
        show_default=False,
        help=f"Tracker API token (viewer to read, editor to advance). Defaults to the admin token of the stack "
        f"`make up` started ({ADMIN_TOKEN_FILE}).",
    ),
]

PAGE_MAX = 1000  # the tracker's largest page


def _call(method: str, url: str, token: str | None, **kwargs: Any) -> Any:
    if token is None and ADMIN_TOKEN_FILE.exists():
        token = ADMIN_TOKEN_FILE.read_text().strip()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, timeout=30, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        console.print(f"tracker not reachable at {url}: {exc}", style="red", soft_wrap=True)
        raise typer.Exit(2) from exc
    if response.status_code >= 400:
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        detail = body.get("detail", response.text)
        if isinstance(detail, list):  # a request the API's schema refused: say which field and why
            detail = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in detail)
        console.print(f"{response.status_code}: {detail}", style="red", soft_wrap=True)
        for missing in body.get("missing", []):
            console.print(f"  missing: {missing}")
        raise typer.Exit(1)
    return response.json()


@app.command("list")
def list_engagements(
    tracker: TrackerOption = "http://127.0.0.1:8003",
    token: TokenOption = None,
    stage: Annotated[str | None, typer.Option(help="Only engagements in this stage.")] = None,
    playbook: Annotated[str | None, typer.Option(help="Only engagements on this playbook.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only those with an overdue touchpoint.")] = False,
    owner: Annotated[str | None, typer.Option(help="Only those this person owns in any role.")] = None,
    target: Annotated[
        str | None, typer.Option(help="Only those going to this destination (on_prem, gcp, aws…).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=PAGE_MAX, help="At most this many.")] = 100,
) -> None:
    """Engagements, newest first."""
    given = {"stage": stage, "playbook_id": playbook, "overdue": overdue or None, "owner": owner, "target": target}
    params = {k: v for k, v in {**given, "limit": limit}.items() if v}
    table = Table("customer", "name", "playbook", "stage", "status")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=36))  # whole, to paste into `status ID`
    for e in _call("GET", f"{tracker}/v1/engagements", token, params=params):
        table.add_row(e["id"], e["customer"], e["name"], e["playbook_id"], e["stage"], e["status"])
    console.print(table)


@app.command()
def status(engagement_id: str, tracker: TrackerOption = "http://127.0.0.1:8003", token: TokenOption = None) -> None:
    """Where is this customer: stage, checklist, what blocks the next stage, health, top endpoints."""
    s = _call("GET", f"{tracker}/v1/engagements/{engagement_id}/status", token)
    e, stage = s["engagement"], s["stage"]
    # A paused or closed engagement reads like an active one below: say so in the first line, not to be missed.
    state = ("" if e["status"] == "active" else f" · {e['status'].upper()}", "bold red")
    console.print(Text.assemble((e["customer"], "bold"), f" · {e['name']} · {s['playbook']}", state))
    console.print(Text.assemble("Stage: ", (stage["name"], "bold"),
                                f", {stage['days_in_stage']:.1f} of {stage['expected_days']} days",
                                (" (stalled)", "red") if stage["stalled"] else ""))  # fmt: skip
    console.print(f"Health: {s['health']}/100 " + "; ".join(s["health_reasons"]))
    checklist = Table("done", "item", "how")
    for item in s["checklist"]:
        missing = item.get("missing") or []
        how = item["satisfied_by"] or (f"{item['done_by']}" if item["done"] else "")
        how = how or ("no logs yet of " + ", ".join(missing) if missing else "")
        checklist.add_row("✓" if item["done"] else "·", item["title"], how)
    console.print(checklist)
    if s["blocking"]:
        console.print("Blocking the next stage: " + "; ".join(s["blocking"]))
    top = Table("key", "count", "p99 ms", "%fail", "score", title=f"{s['requests_counted']:,} requests counted")
    for k in s["top_keys"]:
        top.add_row(k["key"], f"{k['count']:,}", f"{k['p99_ms']:.1f}", f"{k['perc_failed']:.2f}", f"{k['score']:.0f}")
    console.print(top)


@app.command()
def findings(
    engagement_id: str,
    tracker: TrackerOption = "http://127.0.0.1:8003",
    token: TokenOption = None,
    rule: Annotated[FindingRule | None, typer.Option(help="Only findings of this rule.")] = None,
    log_type: Annotated[str | None, typer.Option(help="production_json, api_json, gitaly or sidekiq.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=PAGE_MAX, help="At most this many, newest window first.")] = 50,
) -> None:
    """What the analyzer found in the engagement's logs: rule, key, window and the figures that tripped it."""
    given = {"rule": rule, "log_type": log_type, "limit": limit}
    params = {k: v for k, v in given.items() if v}
    page = _call("GET", f"{tracker}/v1/engagements/{engagement_id}/findings", token, params=params)
    table = Table("window (UTC)", "rule", "log type", "key", "figures",
                  title=f"{len(page['findings'])} of {page['total']:,} findings")  # fmt: skip
    for f in page["findings"]:
        figures = ", ".join(f"{k} {v:g}" for k, v in f["figures"].items())
        table.add_row(f["window_start"][:16].replace("T", " "), f["rule"], f["log_type"], f["key"], figures)
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
    url = f"{tracker}/v1/engagements/{engagement_id}/stats"
    query = {k: v for k, v in params.items() if v}
    rows: list[dict[str, Any]] = []
    while True:
        size = 1000 if most is None else min(1000, most - len(rows))  # 1000: the API's largest page
        page = _call("GET", url, token, params={**query, "limit": size, "offset": len(rows)})
        rows += [_row(k) for k in page["keys"]]
        wanted = page["key_count"] if most is None else min(most, page["key_count"])
        if len(rows) >= wanted or not page["keys"]:
            return rows, _row(page["totals"][0]) if page["totals"] else None, page["span_seconds"]


@app.command()
def stats(
    engagement_id: str,
    tracker: TrackerOption = "http://127.0.0.1:8003",
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
    engagement_id: str,
    a: Annotated[str, typer.Argument(help="Range A as SINCE..UNTIL, ISO 8601, either side may be empty.")],
    b: Annotated[str, typer.Argument(help="Range B, the same way ('..' for everything).")],
    other: Annotated[
        str | None, typer.Option("--with", help="Take B from this engagement instead (e.g. a pilot's baseline).")
    ] = None,
    tracker: TrackerOption = "http://127.0.0.1:8003",
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
def portfolio(tracker: TrackerOption = "http://127.0.0.1:8003", token: TokenOption = None) -> None:
    """Engagements per stage, overdue touchpoints, stalled engagements."""
    p = _call("GET", f"{tracker}/v1/portfolio", token)
    table = Table("playbook", "stage", "engagements")
    for c in p["by_stage"]:
        table.add_row(c["playbook_id"], c["stage"], str(c["count"]))
    console.print(table)
    console.print(f"Overdue touchpoints: {p['overdue_touchpoints']}   Stalled: {len(p['stalled'])}")


@app.command()
def advance(
    engagement_id: str,
    tracker: TrackerOption = "http://127.0.0.1:8003",
    token: TokenOption = None,
    force: Annotated[bool, typer.Option(help="Skip unmet exit criteria (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
) -> None:
    """Move an engagement to its next stage (refused with what is missing)."""
    body = {"force": force, "reason": reason}
    change = _call("POST", f"{tracker}/v1/engagements/{engagement_id}/advance", token, json=body)
    forced = " (forced)" if change["forced"] else ""
    console.print(Text.assemble(f"{change['from_stage']} → ", (change["to_stage"], "bold"), forced))
