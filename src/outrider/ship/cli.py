"""`outrider ship`: the command customers run next to their GitLab."""

import ipaddress
import itertools
import re
import shlex
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import httpx
import typer
from rich.live import Live
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table
from typer import _click as click  # typer vendors click; TyperGroup's hooks take its types
from typer.core import TyperGroup

from outrider.ship.bundle import BundleError, read_pieces, survey
from outrider.ship.checkpoint import Checkpoints, StateFileError, held
from outrider.ship.tailer import (
    BATCH_BYTES,
    ROTATION_GRACE_S,
    Batch,
    LogFileError,
    Tailer,
    is_glob,
    log_type_of,
    paths_of,
)
from outrider.ship.uploader import ATTEMPTS, UNREACHABLE_S, FileRefused, ShipError, Stop, Uploader
from outrider.stats.render import stderr_console
from outrider.up import stack_port

OMNIBUS = [
    "/var/log/gitlab/gitlab-rails/production_json.log", "/var/log/gitlab/gitlab-rails/api_json.log",
    "/var/log/gitlab/gitaly/current", "/var/log/gitlab/sidekiq/current",
]  # fmt: skip
console = stderr_console()  # no emoji: `:smile:` in a path is text
MAX_SOURCE = 200  # ingest refuses a longer `source` (422)
P = ParamSpec("P")
R = TypeVar("R")


class SetupError(Exception):
    """A setting or path that cannot work: said in one line, exit code 2, before anything is sent."""


def _fail_cleanly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn mistakes in how the shipper is run into a one-line error and exit code 2 (never a traceback)."""

    @wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (SetupError, StateFileError, LogFileError, BundleError) as exc:
            console.print(f"error: {exc}", style="red", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return run


def _warn(message: str) -> None:
    console.print(f"warning: {message}", style="yellow", markup=False, soft_wrap=True)


class _TailByDefault(TyperGroup):
    """`outrider ship [OPTIONS] [FILES...] [--once]` is short for `outrider ship [OPTIONS] tail [FILES...] [--once]`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """The shared options (--engagement, --url, ...) are taken wherever they are, also after the file names."""
        options = [param for param in self.params if param.param_type_name == "option"]
        shared = {name for param in options for name in param.opts}
        flags = {name for param in options if getattr(param, "is_flag", False) for name in param.opts}
        front: list[str] = []
        rest: list[str] = []
        remaining = iter(args)
        for arg in remaining:
            if arg == "--":  # what follows is file names, whatever they look like
                rest += [arg, *remaining]
            elif arg in flags:
                front.append(arg)
            elif arg in shared:
                front += [arg, *itertools.islice(remaining, 1)]
            elif arg.split("=", 1)[0] in shared:
                front.append(arg)
            else:
                rest.append(arg)
        return super().parse_args(ctx, front + rest)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands:
            args = ["tail", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_TailByDefault,
    # Options of `tail` (--once, --state, --interval) may follow the shared ones directly; they reach `tail`.
    context_settings={"ignore_unknown_options": True},
    help="Ship GitLab logs to Outrider over HTTPS. Without a subcommand: tail FILES (default: the Omnibus GitLab "
    "logs), following appends and rotation, resuming from the state file after a restart.\n\n"
    "Give the upload token in OUTRIDER_SHIP_TOKEN rather than --token, which other users can see in `ps`. A plain "
    "http:// URL is refused unless it names this host (127.0.0.1, ::1, localhost) or --allow-http is given.\n\n"
    "Examples:\n\n"
    "outrider ship --engagement ID --url https://ingest.example.com\n\n"
    "outrider ship --engagement ID --url URL '/var/log/gitlab/*/current' --once\n\n"
    "outrider ship --engagement ID --url URL bundle gitlabsos.tar.gz",
)


@dataclass(frozen=True)
class _Target:
    url: str
    engagement: str
    token: str = field(repr=False)
    source: str
    allow_http: bool = False


def _loopback(host: str) -> bool:
    """Whether `host` is this machine, so plain HTTP to it never crosses a network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_problem(url: str, *, allow_http: bool = False) -> str | None:
    """Why `url` cannot be ingest's base URL, or None. Plain HTTP only to this host unless allowed: the upload token
    rides in every request's header."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"is not a URL ({exc})"
    if parsed.scheme not in ("http", "https"):
        return "does not start with http:// or https://"
    if not parsed.host:
        return "has no host"
    if parsed.query or parsed.fragment:
        return "has a query or fragment; give ingest's base URL only"
    if parsed.scheme == "http" and not allow_http and not _loopback(parsed.host):
        return (
            "is plain HTTP to another host: the upload token would travel unencrypted; use https://, or add "
            "--allow-http to send it anyway"
        )
    return None


def _checked(target: _Target) -> _Target:
    """The target with its engagement id in canonical form, or SetupError naming the first setting that cannot work."""
    if not target.engagement or not target.token:
        raise SetupError(
            "--engagement (or OUTRIDER_SHIP_ENGAGEMENT) and a token (OUTRIDER_SHIP_TOKEN or --token) are required; "
            "see `outrider ship --help`"
        )
    try:
        engagement = str(uuid.UUID(target.engagement))
    except ValueError:
        raise SetupError(
            f"--engagement {target.engagement!r} is not an engagement id (a UUID such as "
            f"3f2b6c1e-8d4a-4f7e-9a51-0c6e2d9b7a10; `outrider engagements list` shows them)"
        ) from None
    # Never quote the token: say what is wrong with it, not what it is.
    if not all("!" <= c <= "~" for c in target.token):
        raise SetupError(
            "the upload token (OUTRIDER_SHIP_TOKEN or --token) has a space, control or non-ASCII character inside, "
            "which an HTTP header cannot carry; check that it was copied whole"
        )
    if problem := _url_problem(target.url, allow_http=target.allow_http):
        shown = re.sub(r"(?<=//)[^/@]*@", "…@", target.url)  # user:password@ is a secret too
        raise SetupError(f"--url {shown!r} {problem} (e.g. --url https://ingest.example.com)")
    if not 1 <= len(target.source) <= MAX_SOURCE:
        raise SetupError(f"--source must be 1 to {MAX_SOURCE} characters, not {len(target.source)}")
    return _Target(target.url, engagement, target.token, target.source, target.allow_http)


def _uploader(ctx: typer.Context) -> Uploader:
    """The uploader for the shared options, checked only now so `ship SUBCOMMAND --help` works without them."""
    target = _checked(ctx.obj)
    uploader = Uploader(
        target.url.rstrip("/"), target.engagement, target.token, target.source,
        on_retry=lambda message: console.print(message, style="yellow", markup=False, soft_wrap=True),
    )  # fmt: skip
    ctx.call_on_close(uploader.close)
    return uploader


def _check_named(patterns: list[str], *, once: bool) -> None:
    """Named paths that can never ship fail now; those that may still appear are said to be waited for."""
    empty = [pattern for pattern in patterns if is_glob(pattern) and not paths_of([pattern])]
    if once and empty == patterns:
        raise SetupError(
            f"nothing to ship: no file matches {', '.join(map(shlex.quote, empty))}; check the paths "
            f"(quote a glob so the shell passes it on as it is)"
        )
    for pattern in patterns:
        if is_glob(pattern):
            if pattern in empty:
                _warn(f"{pattern} matches no file" + ("" if once else " yet; waiting for one"))
            continue
        path, quoted = Path(pattern), shlex.quote(pattern)
        if pattern.endswith(".gz"):
            raise SetupError(
                f"{pattern}: compressed; tail follows plain files as they grow "
                f"(`outrider ship bundle {quoted}` uploads a finished .gz log)"
            )
        if path.is_dir():
            raise SetupError(
                f"{pattern}: is a directory; name the logs in it (e.g. {shlex.quote(str(path / '*.log'))}) "
                f"or upload them with `outrider ship bundle {quoted}`"
            )
        if not path.exists():
            if once:
                raise SetupError(f"{pattern}: no such file")
            _warn(f"{pattern}: no such file yet; waiting for it")


@app.callback(invoke_without_command=True)
def ship(
    ctx: typer.Context,
    engagement: Annotated[str, typer.Option(envvar="OUTRIDER_SHIP_ENGAGEMENT", help="Engagement id (a UUID).")] = "",
    url: Annotated[
        str,
        typer.Option(
            envvar="OUTRIDER_SHIP_URL",
            help="Base URL of ingest. Default: the ingest `make up` started (its port in .outrider/stack.json), "
            "else http://127.0.0.1:8001.",
        ),
    ] = "http://127.0.0.1:8001",
    token: Annotated[
        str, typer.Option(envvar="OUTRIDER_SHIP_TOKEN", show_default=False, help="Upload token (env preferred).")
    ] = "",
    source: Annotated[str, typer.Option(help="Name of this host in Outrider.")] = socket.gethostname(),
    allow_http: Annotated[
        bool,
        typer.Option(
            "--allow-http",
            envvar="OUTRIDER_SHIP_ALLOW_HTTP",
            help="Accept a plain http:// --url to another host. The upload token and the logs then travel "
            "unencrypted: only on a network you trust.",
        ),
    ] = False,
) -> None:
    """Connection settings shared by the subcommands; without one, tail the Omnibus GitLab logs."""
    url_from = ctx.get_parameter_source("url")  # typer's own (vendored) click's enum: compared by name
    if url_from is not None and url_from.name == "DEFAULT" and (port := stack_port("ingest")):
        url = f"http://127.0.0.1:{port}"  # `make up` found 8001 taken and chose another port
    # A value read from a file or an env var often ends in a newline.
    ctx.obj = _Target(url.strip(), engagement.strip(), token.strip(), source, allow_http)
    if ctx.invoked_subcommand is None:
        tail(ctx)


@app.command()
@_fail_cleanly
def tail(
    ctx: typer.Context,
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files or glob patterns (default: the Omnibus GitLab logs). A named file that does not exist yet is "
            "waited for (with --once it is an error); compressed .gz files are for `bundle`."
        ),
    ] = None,
    state: Annotated[
        Path,
        typer.Option(
            help="Where shipped offsets are kept. A relative path is taken from the working directory: give an "
            "absolute one when a service manager runs the shipper, since another state file starts over and "
            "counts the lines again. One shipper at a time per state file (a lock file sits beside it)."
        ),
    ] = Path(".outrider-ship.json"),
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help=f"Ship what exists now, then exit; non-zero when nothing matches or something was not shipped. An "
            f"ingest that cannot be reached at all is retried for {UNREACHABLE_S:g} s, one that answers 408, 429 or "
            f"5xx up to {ATTEMPTS} times per batch, honouring Retry-After. Without --once, both are retried until they "
            f"land.",
        ),
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks at the files when following.")] = 1.0,
    rotation_grace: Annotated[
        float,
        typer.Option(
            min=0,
            help="When following, seconds a file renamed by rotation must go unwritten before its unfinished last "
            "line is shipped and it is let go: the application writes on to it until it reopens its log.",
        ),
    ] = ROTATION_GRACE_S,
    batch_bytes: Annotated[
        int,
        typer.Option(
            min=4096,
            help="Most bytes of log lines in one request (sent gzipped, about a seventh of it). Lower it when a proxy "
            "in front of ingest limits request bodies (nginx: 1 MiB by default) and answers 413. A longer line is "
            "still sent whole.",
        ),
    ] = BATCH_BYTES,
) -> None:
    """Follow files across appends and rotation, shipping whole lines; resumes from the state file."""
    uploader = _uploader(ctx)
    if not once:  # a follower waits out any outage holding the same batch; --once must end
        uploader.attempts = uploader.unreachable_s = None
    if files:
        _check_named(files, once=once)
    elif not any(Path(p).exists() for p in OMNIBUS):
        none = f"none of the Omnibus GitLab logs exist ({', '.join(OMNIBUS)}); name the files to ship"
        if once:
            raise SetupError(f"nothing to ship: {none}")
        _warn(none)
    with held(state):  # before reading it: another shipper's saves would undo this one's, and the other way round
        _follow(uploader, files or OMNIBUS, Checkpoints(state), once=once, interval=interval, grace=rotation_grace,
                batch_bytes=batch_bytes)  # fmt: skip


@contextmanager
def _stop_on_signals(stopping: Stop) -> Iterator[None]:
    """Ctrl-C and SIGTERM ask `stopping` to stop after the batch in hand rather than interrupt it: an interrupt in the
    middle of an HTTP call or a screen update could leave a lock held and hang the exit. A second one stops at once."""

    def stop(signum: int, frame: object) -> None:
        if stopping.requested:
            raise KeyboardInterrupt
        stopping.requested = True

    handlers = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _follow(
    uploader: Uploader,
    patterns: list[str],
    checkpoints: Checkpoints,
    *,
    once: bool,
    interval: float,
    grace: float,
    batch_bytes: int,
) -> None:
    """Ship the files `patterns` name, once or looking again every `interval` seconds."""
    tailers: dict[Path, Tailer] = {}
    shipped: dict[Path, int] = {}
    refused: dict[Path, str] = {}
    started = time.monotonic()

    def look() -> None:
        # Globs are expanded on every look, so a file created after the start is followed too.
        for path in paths_of(patterns):
            if path not in tailers:
                # --once takes what exists now as finished
                tailer = Tailer(path, checkpoints, max_bytes=batch_bytes, rotation_grace_s=0 if once else grace,
                                tell=_warn)  # fmt: skip
                tailers[path], shipped[path] = tailer, 0

    def view() -> Table:
        elapsed = max(time.monotonic() - started, 1e-6)
        table = Table("file", "type", "shipped", "rate", "lag")
        for path, t in tailers.items():
            lag = "refused" if path in refused else f"{t.lag():,} B"
            table.add_row(str(path), log_type_of(path) or "auto", f"{shipped[path]:,} B",
                          f"{shipped[path] / elapsed / 1024:,.1f} KiB/s", lag)  # fmt: skip
        return table

    stopping = uploader.stopping
    try:
        with _stop_on_signals(stopping), Live(view(), console=console, refresh_per_second=2, transient=once) as live:
            while not stopping.requested:
                look()
                for path, tailer in tailers.items():
                    if stopping.requested:
                        break
                    if path in refused:
                        if not tailer.replaced():
                            continue
                        del refused[path]  # rotation brought a new file: ship it, the refused one stays behind
                        console.print(f"{path}: a new file after rotation; shipping it", markup=False, soft_wrap=True)
                    try:
                        for batch in tailer.batches():
                            try:
                                tailer.shipped(batch, _send(uploader, batch))
                            except FileRefused as exc:
                                tailer.refused(batch, exc.taken)
                                raise
                            shipped[path] += len(batch.data)
                            if stopping.requested:
                                break
                    except FileRefused as exc:  # this file stops at the refused bytes; the others go on
                        refused[path] = str(exc)
                        console.print(str(exc), style="red", markup=False, soft_wrap=True)
                    live.update(view())
                if once:
                    break
                stopping.sleep(interval)
        summary = view()  # while the files are open: their lag is read from them
    except ShipError as exc:
        if not stopping.requested:
            console.print(str(exc), style="red", markup=False, soft_wrap=True)
            raise typer.Exit(1) from exc
        summary = view()  # asked to stop while a batch was retried: it is sent again by the next run
    finally:
        for tailer in tailers.values():
            tailer.close()
    console.print(summary)
    if refused:
        raise typer.Exit(1)


def _send(uploader: Uploader, batch: Batch) -> int:
    return int(uploader.send(batch, log_type_of(batch.path)))


@app.command()
@_fail_cleanly
def bundle(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(exists=True, help="A directory or .tar.gz of GitLab logs, or one .gz log.")],
) -> None:
    """Upload a saved bundle of logs (re-running it never double counts: chunk ids repeat).

    Like `tail --once`, it gives up on an ingest it cannot reach within a few seconds, and on one that keeps answering
    408, 429 or 5xx after a few tries.
    """
    uploader = _uploader(ctx)
    files, stored = survey(path, tell=_warn)  # the progress total, without holding the logs in memory
    if not files:
        console.print(f"no GitLab log files in {path}", style="yellow", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    columns = (*Progress.get_default_columns()[:1], BarColumn(), DownloadColumn(), TransferSpeedColumn())
    stopping, done = uploader.stopping, 0
    with _stop_on_signals(stopping), Progress(*columns, console=console) as progress:
        task = progress.add_task(f"{path.name}", total=stored)
        for piece in read_pieces(path):
            if stopping.requested:
                break
            try:
                uploader.send(Batch(Path(piece.name), piece.file_id, piece.offset, piece.data), piece.log_type)
            except ShipError as exc:
                if stopping.requested:
                    break
                console.print(str(exc), style="red", markup=False, soft_wrap=True)
                raise typer.Exit(1) from exc
            done = piece.read
            progress.update(task, completed=done)
        else:
            progress.update(task, completed=stored)
    if stopping.requested:
        console.print(f"stopped after {done:,} of {stored:,} bytes of {path}: run it again to finish (what was sent "
                      "is not counted twice)", style="yellow", markup=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(1)
    console.print(f"shipped {files} files from {path}")
