"""`outrider stats`: fast-stats for GitLab logs, offline. `outrider stats FILE…` prints the default table."""

import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.markup import escape
from typer.core import TyperGroup

import logparse
from outrider.stats import sources, views
from outrider.stats.render import (
    OutputFormat,
    Section,
    emit_all,
    iso,
    quit_quietly,
    stderr_console,
    stdout_console,
)

P = ParamSpec("P")
R = TypeVar("R")


class DefaultTableGroup(TyperGroup):
    """Treat `outrider stats FILE…` as `outrider stats table FILE…` so the common case needs no subcommand."""

    # typer vendors its own click, whose Context it does not export; the context is only passed through.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        piped = not args and not sys.stdin.isatty()  # `… | outrider stats`, as with fast-stats
        if piped or (args and args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["table", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultTableGroup,
    name="stats",
    help=(
        "Statistics of GitLab logs (production_json, api_json, Gitaly, Sidekiq), like fast-stats.\n\n"
        "[bold]outrider stats FILE…[/bold] prints the per-key table (same as [bold]outrider stats table[/bold]); "
        "the [bold]top[/bold], [bold]errors[/bold] and [bold]compare[/bold] views break it down further. "
        "Files may be plain or gzip (also svlogd's rotated @4000….s files); '-' reads stdin."
    ),
    epilog=(
        "Examples:\n\n"
        "outrider stats production_json.log\n\n"
        "outrider stats --sort-by p99 --limit 20 --interval 1h /var/log/gitlab/gitaly/current\n\n"
        "outrider stats /var/log/gitlab/sidekiq/@4000*.s --format csv > sidekiq.csv\n\n"
        "kubectl logs deploy/gitlab-webservice-default | outrider stats --type api_json\n\n"
        "outrider stats top --sort-by cpu --display both api_json.log\n\n"
        "outrider stats errors sidekiq/current\n\n"
        "outrider stats compare before/production_json.log after/production_json.log"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

Files = Annotated[
    list[str] | None,
    typer.Argument(
        help="Log files (plain or gzip, e.g. @4000….s) or pipes (<(zcat f.gz)); '-' or none for stdin.",
        show_default=False,
    ),
]
TypeOpt = Annotated[
    str | None,
    typer.Option(
        "--type",
        "-t",
        help="Log type instead of auto-detection: production_json, api_json, gitaly or sidekiq.",
        show_default=False,
    ),
]
LimitOpt = Annotated[int, typer.Option("--limit", "-l", min=1, help="Rows to print per table.")]
SortOpt = Annotated[str, typer.Option(help="Column to sort by, e.g. score, count, p99, fail, db.")]
CompareSortOpt = Annotated[
    str, typer.Option(help="Rank keys by the change of: count, rps, p99, p95, median, score or perc_failed.")
]
PrintFieldsOpt = Annotated[
    str | None,
    typer.Option(
        help=f"Comma-separated columns: {', '.join(views.STAT_COLUMNS)}. "
        "Default: fast-stats' columns plus the component times the logs carry.",
        show_default=False,
    ),
]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
IntervalOpt = Annotated[
    str | None,
    typer.Option(
        help="One table per time window, e.g. 10m or 1h; lines without a usable time come last, as '(no time)'.",
        show_default=False,
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Explain skipped and bad lines, with samples.")]
ApproxOpt = Annotated[
    bool,
    typer.Option(
        "--approximate",
        help="Percentiles from a mergeable sketch (within 1%) instead of every duration: memory bounded by the "
        "number of keys, for inputs too large to hold one number per request.",
    ),
]


class StatsError(Exception):
    """A problem to report to the user in one line, without a traceback."""


def _fail_cleanly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected errors into a one-line message and exit code 2 (never a traceback); a reader that stopped
    reading (`| head`) ends the command quietly."""

    @wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # here, not at exit, where a closed pipe could no longer be told from an error
            return result
        except (StatsError, views.ViewError, sources.InputError, ValueError) as e:
            stderr_console().print(f"[red]error:[/red] {escape(str(e))}")
            raise typer.Exit(2) from None
        except BrokenPipeError:  # CSV and JSON, written as one text (rich's tables call it themselves)
            quit_quietly()

    return run


def _inputs(files: Sequence[str] | None) -> list[sources.Source]:
    """The inputs, each checked before any is read: anything that can be read but a directory, so also a pipe
    (`<(zcat a.gz)`) or /dev/stdin."""
    inputs = []
    for f in files or [sources.STDIN]:
        if f != sources.STDIN:
            if Path(f).is_dir():
                raise StatsError(f"{f}: is a directory; name the logs in it (e.g. {Path(f) / '*.log'})")
            if not Path(f).exists():
                raise StatsError(f"{f}: no such file")
        inputs.append(sources.Source(f))
    return inputs


def _seconds(interval: str | None) -> int:
    """--interval in seconds, 0 without one."""
    return views.parse_interval(interval) if interval else 0


def _load(
    files: Sequence[str] | None,
    log_type: str | None,
    seconds: int = 0,
    approximate: bool = False,
    label: str | None = None,
    **kinds: bool,
) -> list[logparse.LogReport]:
    """One report per log type found among `files`, each input joining the one of the type most of its head
    lines tell (or the unrecognised one); an empty input joins none and is told of on stderr. `label` leads what
    stderr is told (and stands for the input's name)."""
    views.check_log_type(log_type)
    inputs = _inputs(files)
    reports: dict[str | None, logparse.LogReport] = {}
    also: dict[str | None, list[str]] = {}  # other log types the heads of each report's inputs told, to name

    def report(t: str | None) -> logparse.LogReport:
        if t not in reports:
            reports[t] = logparse.LogReport(log_type=t, interval_seconds=seconds, exact=not approximate, **kinds)
        return reports[t]

    def route(types: list[str]) -> logparse.LogReport:
        main = types[0] if types else None
        others = also.setdefault(main, [])
        others += [t for t in types[1:] if t not in others]
        return report(main)

    empty = sources.feed(report(log_type) if log_type else route, inputs)
    err = stderr_console()
    lead = f"{label}: " if label else ""
    for source in empty:  # not an error: an empty log is an answer, but an empty table alone reads as "no requests"
        err.print(f"{label or source.name}: empty", markup=False)
    for t, r in reports.items():
        # A file of several types (Helm's stdout) is read as its commonest: say what the others hold.
        if other := r.skipped.get("other_log_type"):
            hint = f"; --type {' or '.join(also[t])} shows them" if also.get(t) else ""
            told = f"{lead}{t}: {other} of {r.lines} lines belong to other log types (skipped){hint}"
            err.print(told, markup=False)
    return list(reports.values()) or [report(None)]


def _explain(report: logparse.LogReport, verbose: bool, named: bool, label: str | None = None) -> None:
    """Tell on stderr what was not counted: always the bad-line count, and when no line was counted the skipped
    ones (with `named`, the log type came from --type, which may be the wrong one); with --verbose the reasons and
    samples. `label` leads each message (compare's `A (before.log)`)."""
    err = stderr_console()
    lead = f"{label}: " if label else ""
    bad, skipped = sum(report.bad_lines.values()), sum(report.skipped.values())
    if report.log_type is None and report.lines:  # (empty inputs were told of as such)
        err.print(f"{lead}no GitLab log lines recognised in {report.lines} lines; try --type", markup=False)
    elif report.lines and report.lines == bad + skipped:  # an empty table alone would read as "no requests"
        why = ", ".join(f"{reason.replace('_', ' ')}: {n}" for reason, n in report.skipped.items())
        told = f"{lead}{report.log_type}: no line counted"
        told += f"; {skipped} of {report.lines} lines skipped ({why})" if skipped else ""
        told += "; drop --type to detect the log type" if named else ""
        err.print(told, markup=False)
    if bad and not verbose:  # named by log type: files of several types print one count each
        err.print(
            f"{lead}{report.log_type or 'unrecognised'}: {bad} of {report.lines} lines could not be used"
            " (--verbose tells why)",
            markup=False,
        )
    if verbose:
        err.print(f"{lead}log type: {report.log_type}; {report.lines} lines read", markup=False)
        for reason, n in report.skipped.items():
            err.print(f"  skipped {n} lines: {reason.replace('_', ' ')}")
        for reason, n in report.bad_lines.items():
            err.print(f"  bad {n} lines: {reason.replace('_', ' ')}")
        for reason, sample in report.samples:
            err.print(f"    {reason}: {sample}", markup=False)


def _counted(report: logparse.LogReport) -> int:
    """The lines that made it into the numbers."""
    return report.lines - sum(report.bad_lines.values()) - sum(report.skipped.values())


# Lines of the log type that are not requests (Gitaly's non-call lines, Sidekiq's job starts and other messages):
# a log of only those is an answer (no requests then), not a wrong input.
NOT_REQUESTS = ("not_a_call", "not_a_job", "job_start")


def _nothing_counted(reports: Sequence[logparse.LogReport]) -> bool:
    """Lines were read but not one was counted: the wrong --type, or no GitLab log at all. (Empty inputs alone, or
    logs whose every line is of their type but not a request, are an answer, not this.)"""
    read = any(r.lines for r in reports) and not any(_counted(r) for r in reports)
    return read and not all(_of_its_type(r) for r in reports if r.lines)


def _of_its_type(report: logparse.LogReport) -> bool:
    """Whether a log that counted nothing is still of its type: none of its lines another type's, and more of them
    its type's non-requests than bad lines (one line cut short does not make a Gitaly log of non-calls an error)."""
    not_requests = sum(report.skipped.get(reason, 0) for reason in NOT_REQUESTS)
    return not report.skipped.get("other_log_type") and not_requests > sum(report.bad_lines.values())


def _meta(report: logparse.LogReport) -> dict[str, Any]:
    return {"log_type": report.log_type, **_read(report)}


def _read(report: logparse.LogReport) -> dict[str, Any]:
    """What was read of a report's inputs: lines, time span, and the lines not counted, by reason."""
    return {
        "lines": report.lines,
        "start": iso(report.start_time),
        "end": iso(report.end_time),
        "bad_lines": report.bad_lines,
        "skipped": report.skipped,
    }


def _emit(
    outputs: list[tuple[logparse.LogReport, list[Section]]], fmt: OutputFormat, verbose: bool, named: bool
) -> None:
    """Print each report's sections (several JSON documents as one list), then what each left out; when not one
    line was counted, only why, with exit code 2 (an empty table would read as "no requests")."""
    if _nothing_counted([report for report, _ in outputs]):
        for report, _ in outputs:
            _explain(report, verbose, named)
        raise typer.Exit(2)
    emit_all([(sections, _meta(report)) for report, sections in outputs], fmt, stdout_console())
    for report, _ in outputs:
        _explain(report, verbose, named)


@app.command("table")
@_fail_cleanly
def table(
    files: Files = None,
    log_type: TypeOpt = None,
    sort_by: SortOpt = "score",
    limit: LimitOpt = 10,
    print_fields: PrintFieldsOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    interval: IntervalOpt = None,
    approximate: ApproxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Per-key COUNT, RPS, P99/P95/MEDIAN, MAX, MIN, STDDEV, SCORE (= COUNT * P99) and %FAIL, with totals."""
    outputs, seconds = [], _seconds(interval)
    for report in _load(files, log_type, seconds, approximate):
        fields = views.stats_fields(report, print_fields)
        outputs.append((report, views.stats_sections(report, fields, sort_by, limit, seconds)))
    _emit(outputs, fmt, verbose, named=log_type is not None)


@app.command("top")
@_fail_cleanly
def top(
    files: Files = None,
    log_type: TypeOpt = None,
    sort_by: Annotated[
        str, typer.Option(help=f"Rank by: {', '.join(views.TOP_FIELDS)} (cpu-s also works).")
    ] = "duration",
    limit: LimitOpt = 10,
    display: Annotated[
        str,
        typer.Option(help="Show values, percentage of totals, or both: value|percentage|both (perc = percentage)."),
    ] = "value",
    fmt: FormatOpt = OutputFormat.table,
    interval: IntervalOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """The busiest users, projects, clients and paths, by count, RPS and total duration, DB, CPU, memory, ...."""
    seconds = _seconds(interval)
    reports = _load(files, log_type, seconds, top=True)
    outputs = [(r, views.top_sections(r, sort_by, limit, display, seconds)) for r in reports]
    _emit(outputs, fmt, verbose, named=log_type is not None)


@app.command("errors")
@_fail_cleanly
def errors(
    files: Files = None,
    log_type: TypeOpt = None,
    limit: LimitOpt = 10,
    fmt: FormatOpt = OutputFormat.table,
    interval: IntervalOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Failures grouped by HTTP status and exception class, gRPC code or Sidekiq error class, with a sample line
    and the first requests of each (time, correlation id, key, user, project); per window with --interval."""
    sample_chars = 2000 if verbose or fmt is not OutputFormat.table else 100
    seconds = _seconds(interval)
    reports = _load(files, log_type, seconds, errors=True)
    outputs = [(r, views.errors_sections(r, limit, sample_chars, seconds)) for r in reports]
    _emit(outputs, fmt, verbose, named=log_type is not None)


@app.command("compare")
@_fail_cleanly
def compare(
    before: Annotated[str, typer.Argument(help="The first log (A), e.g. before a change.", show_default=False)],
    after: Annotated[str, typer.Argument(help="The second log (B), e.g. after it.", show_default=False)],
    log_type: TypeOpt = None,
    sort_by: CompareSortOpt = "score",
    limit: LimitOpt = 10,
    fmt: FormatOpt = OutputFormat.table,
    approximate: ApproxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Two logs side by side per key (A, B and B - A), then the keys that only one of them has.

    Each log's unusable lines are told on stderr, led by A or B: a delta may be one side's bad lines, not a change.

    As JSON, "a" and "b" say what was read of each: input, lines, start, end, bad_lines, skipped."""
    if before == after == sources.STDIN:
        raise StatsError("A and B cannot both be stdin ('-'), which can be read once; give one as a file or a pipe")
    name_a, name_b = sources.Source(before).name, sources.Source(after).name
    (report_a,) = _load([before], log_type, approximate=approximate, label=f"A ({name_a})")
    (report_b,) = _load([after], log_type, approximate=approximate, label=f"B ({name_b})")
    views.check_comparable((name_a, report_a), (name_b, report_b))
    # An empty log (told of on stderr) has no requests of the other's type: every key is the other's alone.
    if not report_a.lines:
        report_a = logparse.LogReport(log_type=report_b.log_type, exact=not approximate)
    if not report_b.lines:
        report_b = logparse.LogReport(log_type=report_a.log_type, exact=not approximate)
    if any(_nothing_counted([r]) for r in (report_a, report_b)):
        for label, name, report in (("A", name_a, report_a), ("B", name_b, report_b)):
            _explain(report, verbose, named=log_type is not None, label=f"{label} ({name})")
        raise typer.Exit(2)
    sections = views.compare_sections(report_a, report_b, sort_by, limit)
    meta = {
        "log_type": report_a.log_type,
        "a": {"input": name_a, **_read(report_a)},
        "b": {"input": name_b, **_read(report_b)},
    }
    emit_all([(sections, meta)], fmt, stdout_console())
    for label, name, report in (("A", name_a, report_a), ("B", name_b, report_b)):
        _explain(report, verbose, named=log_type is not None, label=f"{label} ({name})")
