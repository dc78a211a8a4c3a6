"""What every `outrider engagements …` command shares: the tracker's URL and token options, one call that turns the
API's refusals into a readable line and an exit code, and times as people type them."""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import typer

from outrider.stats.render import stdout_console
from outrider.up import ADMIN_TOKEN_FILE

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
        help=f"Tracker API token (viewer to read, editor to change). Defaults to the admin token of the stack "
        f"`make up` started ({ADMIN_TOKEN_FILE}).",
    ),
]
TRACKER = "http://127.0.0.1:8003"
PAGE_MAX = 1000  # the tracker's largest page


def engagement_url(tracker: str, engagement_id: str, *path: str) -> str:
    """The API URL of an engagement or of a record under it: `engagement_url(t, id, "touchpoints", tp, "held")`."""
    return "/".join([tracker, "v1/engagements", engagement_id, *path])


class Conflict(Exception):
    """409 to a call that asked to see it (`conflict=True`): someone changed the record since it was read."""


def call(method: str, url: str, token: str | None, *, conflict: bool = False, **kwargs: Any) -> Any:
    """The API's JSON answer (None for 204). A refusal prints its status and detail (each field the schema refused,
    each exit criterion missing) and exits 1; an unreachable tracker exits 2."""
    if token is None and ADMIN_TOKEN_FILE.exists():
        token = ADMIN_TOKEN_FILE.read_text().strip()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, timeout=30, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        console.print(f"tracker not reachable at {url}: {exc}", style="red", soft_wrap=True)
        raise typer.Exit(2) from exc
    if response.status_code == 409 and conflict:
        raise Conflict(response.text)
    if response.status_code >= 400:
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        detail = body.get("detail", response.text)
        if isinstance(detail, list):  # a request the API's schema refused: say which field and why
            detail = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in detail)
        console.print(f"{response.status_code}: {detail}", style="red", soft_wrap=True)
        for missing in body.get("missing", []):
            console.print(f"  missing: {missing}")
        raise typer.Exit(1)
    return None if response.status_code == 204 else response.json()


def given(**fields: Any) -> dict[str, Any]:
    """The options a command was given (not None), as the API's fields: a PATCH changes only those."""
    return {k: v for k, v in fields.items() if v is not None}


RELATIVE = re.compile(r"\+(\d+)([mhd])")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
WHEN_HELP = "ISO 8601 (2026-05-04T15:00Z; without a zone, this machine's) or from now: +30m, +2h, +3d."


def when(text: str) -> datetime:
    """A time as typed: ISO 8601, local when it names no zone, or `+N` minutes/hours/days from now."""
    if relative := RELATIVE.fullmatch(text.strip()):
        return datetime.now().astimezone() + timedelta(**{UNITS[relative[2]]: int(relative[1])})
    try:
        return datetime.fromisoformat(text.strip()).astimezone()  # naive: this machine's zone
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a time: {WHEN_HELP}") from None


def shown(iso: str | None) -> str:
    """An API time as a person reads it: UTC to the minute."""
    return "" if iso is None else datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
