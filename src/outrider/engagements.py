"""`outrider engagements …`: the common tracker queries as tables."""

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from outrider.up import ADMIN_TOKEN_FILE

app = typer.Typer(help="Query and move engagements through the tracker API.", no_args_is_help=True)
console = Console()
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


def _call(method: str, url: str, token: str | None, **kwargs: Any) -> Any:
    if token is None and ADMIN_TOKEN_FILE.exists():
        token = ADMIN_TOKEN_FILE.read_text().strip()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, timeout=30, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        console.print(f"tracker not reachable at {url}: {exc}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    if response.status_code >= 400:
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        console.print(
            f"{response.status_code}: {body.get('detail', response.text)}", style="red", markup=False, soft_wrap=True
        )
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
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
) -> None:
    """Engagements, newest first."""
    given = {"stage": stage, "playbook_id": playbook, "overdue": overdue or None, "owner": owner, "target": target}
    params = {k: v for k, v in {**given, "limit": limit}.items() if v}
    table = Table("id", "customer", "name", "playbook", "stage", "status")
    for e in _call("GET", f"{tracker}/v1/engagements", token, params=params):
        table.add_row(e["id"], e["customer"], e["name"], e["playbook_id"], e["stage"], e["status"])
    console.print(table)


@app.command()
def status(engagement_id: str, tracker: TrackerOption = "http://127.0.0.1:8003", token: TokenOption = None) -> None:
    """Where is this customer: stage, checklist, what blocks the next stage, health, top endpoints."""
    s = _call("GET", f"{tracker}/v1/engagements/{engagement_id}/status", token)
    e, stage = s["engagement"], s["stage"]
    console.print(f"[bold]{e['customer']}[/bold] · {e['name']} · {s['playbook']}")
    console.print(f"Stage: [bold]{stage['name']}[/bold], {stage['days_in_stage']:.1f} of {stage['expected_days']} days"
                  + (" [red](stalled)[/red]" if stage["stalled"] else ""))  # fmt: skip
    console.print(f"Health: {s['health']}/100 " + "; ".join(s["health_reasons"]))
    checklist = Table("done", "item", "how")
    for item in s["checklist"]:
        how = item["satisfied_by"] or (f"{item['done_by']}" if item["done"] else "")
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
    rule: Annotated[str | None, typer.Option(help="slow_endpoint, error_spike, slow_gitaly, sidekiq_latency.")] = None,
    log_type: Annotated[str | None, typer.Option(help="production_json, api_json, gitaly or sidekiq.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest window first.")] = 50,
) -> None:
    """What the analyzer found in the engagement's logs: rule, key, window and the figures that tripped it."""
    params = {k: v for k, v in {"rule": rule, "log_type": log_type, "limit": limit}.items() if v}
    page = _call("GET", f"{tracker}/v1/engagements/{engagement_id}/findings", token, params=params)
    table = Table("window (UTC)", "rule", "log type", "key", "figures",
                  title=f"{len(page['findings'])} of {page['total']:,} findings")  # fmt: skip
    for f in page["findings"]:
        figures = ", ".join(f"{k} {v:g}" for k, v in f["figures"].items())
        table.add_row(f["window_start"][:16].replace("T", " "), f["rule"], f["log_type"], f["key"], figures)
    console.print(table)


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
    console.print(
        f"{change['from_stage']} → [bold]{change['to_stage']}[/bold]" + (" (forced)" if change["forced"] else "")
    )
