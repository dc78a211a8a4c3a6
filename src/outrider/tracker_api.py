"""What every `outrider engagements …` command shares: the tracker's URL and token options, one call that turns the
API's refusals into a readable line and an exit code, and times as people type them."""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn
from urllib.parse import quote
from uuid import UUID

import httpx
import typer

from outrider.stats.render import stdout_console
from outrider.up import ADMIN_TOKEN_FILE, stack_tracker

# Names, keys and reasons are data (`[id]` in one is text, not a style); piped, tables keep their natural width.
console = stdout_console(markup=False)


def tracker_base(ctx: typer.Context, param: typer.CallbackParam, text: str) -> str:
    """A `--tracker` URL as the base of every call: http(s) with a host, without trailing slashes. Not given, the
    tracker `outrider up` started, wherever it listens."""
    source = ctx.get_parameter_source(param.name or "")  # typer's own (vendored) click's enum: compared by name
    if source is not None and source.name == "DEFAULT":
        text = stack_tracker() or text
    try:
        url = httpx.URL(text.strip())
    except httpx.InvalidURL as exc:
        raise typer.BadParameter(f"{text!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise typer.BadParameter(f"{text!r} is not an http(s) URL with a host, e.g. {TRACKER}")
    return str(url).rstrip("/")


def uuid_id(text: str) -> str:
    """An id the tracker keys by UUID, refused here (before any call) when it is not one."""
    try:
        return str(UUID(text.strip()))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an id (a UUID, as the list commands show them)") from None


def api_token(text: str | None) -> str | None:
    """A `--token` without the whitespace around it (a CRLF file, a paste); refused, never quoted, when an HTTP header
    cannot carry it."""
    if not text:  # `--token ""`: no token, as before
        return text
    token = text.strip()
    if not token or not (token.isascii() and token.isprintable()):
        raise typer.BadParameter(
            "the token is blank or holds a line break, control or non-ASCII character: no HTTP header can carry it"
        )
    return token


TrackerOption = Annotated[
    str,
    typer.Option(
        "--tracker",
        envvar="OUTRIDER_TRACKER_URL",
        callback=tracker_base,
        show_default="the tracker `outrider up` started, else http://127.0.0.1:8003",
        help="Base URL of the tracker API.",
    ),
]
EngagementArg = Annotated[
    str, typer.Argument(callback=uuid_id, help="The engagement's id (`outrider engagements list`).")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="OUTRIDER_API_TOKEN",
        show_default=False,
        callback=api_token,
        help=f"Tracker API token (viewer to read, editor to change). Defaults, for the tracker `outrider up` started "
        f"(at the URL it recorded, and no other), to that stack's admin token ({ADMIN_TOKEN_FILE}).",
    ),
]
TRACKER = "http://127.0.0.1:8003"
PAGE_MAX = 1000  # the tracker's largest page


def engagement_url(tracker: str, engagement_id: str, *path: str) -> str:
    """The API URL of an engagement or of a record under it: `engagement_url(t, id, "touchpoints", tp, "held")`.
    Each part is one path segment, whatever it holds (an id with `/` or `..` cannot reach another route)."""
    return "/".join([tracker, "v1/engagements", *(quote(part, safe="") for part in (engagement_id, *path))])


_NOT_JSON = object()  # an answer whose body is not JSON


class Conflict(Exception):
    """409 to a call that asked to see it (`conflict=True`): someone changed the record since it was read."""


def call(method: str, url: str, token: str | None, *, conflict: bool = False, **kwargs: Any) -> Any:
    """The API's JSON answer (None for 204). A refusal prints its status and detail (each field the schema refused,
    each exit criterion missing) and exits 1; an unreachable tracker, a redirect or an answer that is not the API's
    (not JSON) exits 2: the URL is not the tracker's."""
    if token is None and ADMIN_TOKEN_FILE.exists() and _is_stack_tracker(url):  # `up`'s tracker, not another
        token = ADMIN_TOKEN_FILE.read_text().strip()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, timeout=30, headers=headers, **kwargs)
    except httpx.InvalidURL as exc:  # not an HTTPError
        console.print(f"not a URL: {url}: {exc}", style="red", soft_wrap=True)
        raise typer.Exit(2) from exc
    except (httpx.LocalProtocolError, UnicodeEncodeError):  # its message quotes the offending header: the token
        console.print(f"not sent to {url}: the token is not a valid HTTP header value", style="red", soft_wrap=True)
        raise typer.Exit(2) from None
    except httpx.HTTPError as exc:
        console.print(f"tracker not reachable at {url}: {exc}", style="red", soft_wrap=True)
        raise typer.Exit(2) from exc
    if response.is_redirect:  # e.g. http to https: following it would resend the token to wherever it points
        moved = f"{response.status_code}: the tracker redirected to {response.headers['location']}; use that URL"
        console.print(moved, style="red", soft_wrap=True)
        raise typer.Exit(2)
    if response.status_code == 409 and conflict:
        raise Conflict(response.text)
    try:
        body = None if response.status_code == 204 else response.json()
    except ValueError:  # an HTML error page, a proxy's answer, a cut body
        body = _NOT_JSON
    if response.status_code >= 400:
        _refused(response, body)
    if body is _NOT_JSON:
        odd = f"{response.status_code} but not the tracker's answer (not JSON): {_start(response)}"
        console.print(odd, style="red", soft_wrap=True)
        raise typer.Exit(2)
    return body


def _is_stack_tracker(url: str) -> bool:
    """Whether `url` is on the tracker `outrider up` started, as it recorded it: the stack's admin token is never
    sent anywhere else (not to another program on this machine, which may hold the port `up` did not get)."""
    tracker = stack_tracker()
    if tracker is None:
        return False
    asked, ours = httpx.URL(url), httpx.URL(tracker)
    return (asked.scheme, asked.host, asked.port) == (ours.scheme, ours.host, ours.port)


def _start(response: httpx.Response) -> str:
    """The start of an answer's body, on one line, to tell what answered."""
    text = " ".join(response.text.split())
    return repr(text[:200] + ("…" if len(text) > 200 else ""))


def _refused(response: httpx.Response, body: Any) -> NoReturn:
    """Print a refusal (4xx/5xx) as one line and what it says is missing, then exit 1."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and all(isinstance(e, dict) for e in detail):  # the schema refused: which field, why
        detail = "; ".join(f"{'.'.join(map(str, e.get('loc') or []))}: {e.get('msg')}" for e in detail)
    if not isinstance(detail, str) or not detail:
        detail = _start(response)
    console.print(f"{response.status_code}: {detail}", style="red", soft_wrap=True)
    missing = body.get("missing") if isinstance(body, dict) else None
    for item in missing if isinstance(missing, list) else []:
        console.print(f"  missing: {item}")
    raise typer.Exit(1)


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
