"""The views of `outrider stats`, as pure functions from parsed reports to sections of rows."""

import math
import re
from collections.abc import Sequence

import logparse
from outrider.stats.render import Column, Section, Value, Window, fixed, text, when

KEY_HEADERS = {
    "production_json": "CONTROLLER",
    "api_json": "ROUTE",
    "gitaly": "METHOD",
    "sidekiq": "WORKER",
}

STAT_COLUMNS = {
    c.name: c
    for c in (
        Column("count", "COUNT", fixed(0)),
        Column("rps", "RPS", fixed(2)),
        Column("p99", "P99_ms"),
        Column("p95", "P95_ms"),
        Column("median", "MEDIAN_ms"),
        Column("max", "MAX_ms"),
        Column("min", "MIN_ms"),
        Column("stddev", "STDDEV"),
        Column("score", "SCORE"),
        Column("perc_failed", "%FAIL", fixed(2)),
        Column("failed", "FAIL_CT", fixed(0)),
        Column("db", "DB_AVG_ms"),
        Column("gitaly", "GITALY_AVG_ms"),
        Column("redis", "REDIS_AVG_ms"),
        Column("cpu", "CPU_AVG_ms"),
        Column("queue", "QUEUE_AVG_ms"),
    )
}
"""Every column of the stats table, by the name --print-fields and --sort-by take."""
FIELD_ALIASES = {"fail": "perc_failed", "%fail": "perc_failed", "fail_ct": "failed", "stdev": "stddev"}
DEFAULT_FIELDS = ("count", "rps", "p99", "p95", "median", "max", "min", "stddev", "score", "perc_failed")
"""fast-stats' default columns; component averages are added for the components the input carries."""

INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
NO_TIME = 0
"""The window logparse puts records without a usable time in (so also any timed in 1970's first window)."""
MAX_INTERVAL = 365 * 86400


class ViewError(ValueError):
    """An option names a field, dimension or interval that does not exist."""


def check_log_type(log_type: str | None) -> None:
    """ViewError unless `log_type` is None (detect it) or one logparse knows."""
    if log_type is not None and log_type not in logparse.LOG_TYPES:
        raise ViewError(f"unknown log type {log_type!r}; choose from {', '.join(logparse.LOG_TYPES)}")


def parse_interval(text: str) -> int:
    """Seconds in `10m`, `1h`, `30s`, `1d` (a bare number is seconds)."""
    m = INTERVAL.match(text.lower())
    if not m or int(m.group(1)) == 0:
        raise ViewError(f"invalid interval {text!r}; use e.g. 30s, 10m, 1h, 1d")
    seconds = int(m.group(1)) * UNIT_SECONDS[m.group(2)]
    if seconds > MAX_INTERVAL:  # windows start at multiples of it since 1970: a longer one would be NO_TIME's
        raise ViewError(f"interval {text!r} is longer than a year (365d)")
    return seconds


def resolve_field(name: str, allowed: Sequence[str]) -> str:
    """The canonical column name for a user-typed field, or ViewError listing the choices."""
    n = name.strip().lower().replace("-", "_")
    n = FIELD_ALIASES.get(n, n)
    if n.endswith("_ms") or n.endswith("_s"):
        n = n.rsplit("_", 1)[0]
    n = n.removesuffix("_avg")  # as the table heads a component: DB_AVG_ms
    if n not in allowed:
        raise ViewError(f"unknown field {name!r}; choose from {', '.join(allowed)}")
    return n


def window(bucket: int | None, seconds: int) -> Window | None:
    """The window of logparse's `bucket_start` for an interval of `seconds`; None without an interval."""
    if bucket is None:
        return None
    return Window(None if bucket == NO_TIME else bucket, seconds)


def window_order(bucket: int | None) -> float:
    """Windows in time order, that of records without a time last."""
    return float("inf") if bucket == NO_TIME else float(bucket or 0)


def _rate(bucket_start: int | None, rps: float) -> float | None:
    """A rate, or None (shown `-`) where there is none: untimed requests, or no time between the first and last."""
    return None if bucket_start == NO_TIME or math.isnan(rps) else rps


def stat_row(k: logparse.KeyStats) -> dict[str, Value]:
    """A stats table row: fast-stats' columns plus average component times per request."""
    n = k.count
    return {
        "key": k.key,
        "count": n,
        "rps": _rate(k.bucket_start, k.rps),
        "p99": k.p99_ms,
        "p95": k.p95_ms,
        "median": k.median_ms,
        "max": k.max_ms,
        "min": k.min_ms,
        "stddev": k.stddev_ms,
        "score": k.score,
        "perc_failed": k.perc_failed,
        "failed": k.failed,
        "db": k.db_sum_ms / n,
        "gitaly": k.gitaly_sum_ms / n,
        "redis": k.redis_sum_ms / n,
        "cpu": k.cpu_sum_ms / n,
        "queue": k.queue_sum_ms / n,
    }


def sort_rows(rows: list[dict[str, Value]], field: str) -> list[dict[str, Value]]:
    """Largest first for numbers, alphabetical for names; ties by key."""
    rows = sorted(rows, key=lambda r: str(r.get("key") or r.get("value") or ""))
    if field in ("key", "value", "error"):
        return sorted(rows, key=lambda r: str(r.get(field) or ""))
    return sorted(rows, key=lambda r: _num(r.get(field)), reverse=True)


def _num(v: Value) -> float:
    return float(v) if isinstance(v, int | float) else float("-inf")


def stats_fields(report: logparse.LogReport, print_fields: str | None) -> list[str]:
    """The columns to print: chosen by the user, or the defaults plus the components the input carries."""
    if print_fields:
        return [resolve_field(f, list(STAT_COLUMNS)) for f in print_fields.split(",") if f.strip()]
    return [*DEFAULT_FIELDS, *report.components]


def key_column(log_type: str | None) -> Column:
    return Column("key", KEY_HEADERS.get(log_type or "", "KEY"), text, numeric=False)


def stats_sections(
    report: logparse.LogReport, fields: Sequence[str], sort_by: str, limit: int, interval: int = 0
) -> list[Section]:
    """The default view: per key, sorted and limited, with a totals row; one section per window of `interval`
    seconds (the one the report was made with)."""
    sort_by = resolve_field(sort_by, ["key", *STAT_COLUMNS])
    columns = [key_column(report.log_type), *(STAT_COLUMNS[f] for f in fields)]
    by_bucket: dict[int | None, list[dict[str, Value]]] = {}
    for k in report.key_stats():
        by_bucket.setdefault(k.bucket_start, []).append(stat_row(k))
    totals = {t.bucket_start: stat_row(t) for t in report.totals()}
    sections = []
    for bucket, rows in sorted(by_bucket.items(), key=lambda kv: window_order(kv[0])):
        rows = sort_rows(rows, sort_by)[:limit]
        sections.append(Section(None, columns, rows, totals[bucket], window=window(bucket, interval)))
    return sections or [Section(None, columns, [])]


def human_ms(v: Value) -> str:
    """Durations as fast-stats prints them: `9m17.0s`, `2.5s`, `12.0ms`.

    Rounded to what is printed before the unit is chosen, so 59.98 s is `1m00.0s`, never `60.0s` or `0m60.0s`.
    """
    if not isinstance(v, int | float) or not math.isfinite(v):
        return "-"
    if round(v, 1) < 1000:
        return f"{v:.1f}ms"
    tenths = round(v / 100)
    if tenths < 600:
        return f"{tenths / 10:.1f}s"
    minutes, tenths = divmod(tenths, 600)
    if minutes < 60:
        return f"{minutes}m{tenths / 10:04.1f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{tenths / 10:04.1f}s"


BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(v: Value) -> str:
    """Memory as fast-stats prints it, in binary units: `7.46 GiB`, `512.00 MiB`, `900 B`."""
    if not isinstance(v, int | float):
        return "-"
    size, unit = float(v), 0
    while abs(round(size, 2)) >= 1024 and unit < len(BYTE_UNITS) - 1:  # as printed: never `1024.00 KiB`
        size, unit = size / 1024, unit + 1
    return f"{int(v)} B" if unit == 0 else f"{size:.2f} {BYTE_UNITS[unit]}"


def percent(v: Value) -> str:
    return "-" if not isinstance(v, int | float) else f"{v:.1f}%"


TOP_COLUMNS = {
    c.name: c
    for c in (
        Column("count", "COUNT", fixed(0)),
        STAT_COLUMNS["rps"],
        Column("duration", "DUR", human_ms),
        Column("db", "DB", human_ms),
        Column("gitaly", "GITALY", human_ms),
        Column("redis", "REDIS", human_ms),
        Column("cpu", "CPU", human_ms),
        Column("queue", "QUEUE", human_ms),
        Column("mem", "MEM", human_bytes),
        Column("failed", "FAIL_CT", fixed(0)),
    )
}
"""Every column of the top tables, by the name --sort-by takes; RPS as in the stats table."""
TOP_FIELDS = tuple(TOP_COLUMNS)
TOP_ALIASES = {"dur": "duration", "cpu_s": "cpu", "mem_bytes": "mem", "fail": "failed", "fail_ct": "failed"}
DIMENSION_HEADERS = {"user": "USER", "project": "PROJECT", "client": "CLIENT", "path": "PATH"}
DISPLAYS = ("value", "percentage", "both")
DISPLAY_ALIASES = {"perc": "percentage"}
"""GreenHat's `--display value,perc,both`."""


def resolve_top_field(name: str) -> str:
    n = name.strip().lower().replace("-", "_")
    n = TOP_ALIASES.get(n, n)
    if n not in TOP_FIELDS:
        raise ViewError(f"unknown field {name!r}; choose from {', '.join(TOP_FIELDS)}")
    return n


def _top_values(t: logparse.TopRow) -> dict[str, Value]:
    return {
        "count": t.count,
        "rps": _rate(t.bucket_start, t.rps),
        "duration": t.duration_sum_ms,
        "db": t.db_sum_ms,
        "gitaly": t.gitaly_sum_ms,
        "redis": t.redis_sum_ms,
        "cpu": t.cpu_sum_ms,
        "queue": t.queue_sum_ms,
        "mem": round(t.mem_bytes) if math.isfinite(t.mem_bytes) else None,  # whole bytes, as GitLab logs them
        "failed": t.failed,
    }


def _share(v: Value, total: Value) -> float | None:
    """`v` as a percentage of `total`; None without both or of a zero total."""
    if isinstance(v, int | float) and isinstance(total, int | float) and total:
        return 100 * v / total
    return None


def top_sections(
    report: logparse.LogReport, sort_by: str, limit: int, display: str, interval: int = 0
) -> list[Section]:
    """Busiest users, projects, clients and paths by count, rate and resource use, as values and/or shares.

    With an interval, one set of tables per window, shares taken of that window's totals.
    """
    if display not in DISPLAYS and display not in DISPLAY_ALIASES:
        raise ViewError(f"unknown display {display!r}; choose from value, percentage (or perc), both")
    display = DISPLAY_ALIASES.get(display, display)
    sort_by = resolve_top_field(sort_by)
    shown = ["count", "rps", "duration", *report.components, *(["mem"] if report.mem_seen else []), "failed"]
    fields = [f for f in TOP_FIELDS if f in shown]
    window_totals = {t.bucket_start: _top_values(t) for t in report.top_totals()}
    # Ranking by a column the log lacks would rank by name under a title that says otherwise.
    if window_totals and sort_by not in fields:
        lacking = "mem_bytes" if sort_by == "mem" else f"{sort_by} times"
        raise ViewError(f"this {report.log_type} log carries no {lacking} to sort by; choose from {', '.join(fields)}")
    columns: list[Column] = []
    for f in fields:
        if display in ("value", "both"):
            columns.append(TOP_COLUMNS[f])
        if display in ("percentage", "both"):
            columns.append(Column(f"{f}_pct", f"{TOP_COLUMNS[f].header} %", percent))

    def row(name: str, values: dict[str, Value], totals: dict[str, Value]) -> dict[str, Value]:
        r: dict[str, Value] = {"value": name}
        for f in fields:
            r[f] = values[f]
            r[f"{f}_pct"] = _share(values[f], totals[f])
        return r

    sections = []
    for bucket, totals in sorted(window_totals.items(), key=lambda kv: window_order(kv[0])):
        for dim in logparse.DIMENSIONS:
            entries = [e for e in report.top(dim) if e.bucket_start == bucket]
            if not any(e.value != "(none)" for e in entries):
                continue
            rows = [row(e.value, _top_values(e), totals) for e in entries]
            rows = sorted(rows, key=lambda r: (-_num(r[sort_by]), str(r["value"])))[:limit]
            title = f"Top {limit} {dim}s by {sort_by}"
            cols = [Column("value", DIMENSION_HEADERS[dim], text, numeric=False), *columns]
            sections.append(Section(title, cols, rows, row("TOTAL", totals, totals), window=window(bucket, interval)))
    if window_totals and not sections:  # requests, but none names a user, project, client or path
        *most, last = logparse.DIMENSIONS
        empty = f"no {', '.join(most)} or {last} named in these {report.log_type} lines"
        sections.append(Section(None, [], [], notes=[empty]))
    return sections


def counted(n: int, thing: str) -> str:
    """`1 key`, `2 keys`."""
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


ERROR_COLUMNS = (
    Column("error", "ERROR", text, numeric=False),
    Column("count", "COUNT", fixed(0)),
    Column("key", "FIRST SEEN IN", text, numeric=False),
    Column("first", "FIRST", text, numeric=False),
    Column("last", "LAST", text, numeric=False),
    Column("sample", "SAMPLE", text, numeric=False),
)


EVENT_COLUMNS = (
    Column("error", "ERROR", text, numeric=False),
    Column("time", "TIME", text, numeric=False),
    Column("correlation_id", "CORRELATION_ID", text, numeric=False),
    Column("key", "KEY", text, numeric=False),
    Column("user", "USER", text, numeric=False),
    Column("project", "PROJECT", text, numeric=False),
)


def errors_sections(report: logparse.LogReport, limit: int, sample_chars: int, interval: int = 0) -> list[Section]:
    """Failures by status and exception, gRPC code or Sidekiq error class, with a sample line each; then the
    first requests of each, as fast-stats lists them (time, correlation id, key, user, project). With an interval,
    both tables per window."""
    by_bucket: dict[int | None, list[logparse.ErrorGroup]] = {}
    for e in report.errors():
        by_bucket.setdefault(e.bucket_start, []).append(e)
    sections = []
    for bucket, in_bucket in sorted(by_bucket.items(), key=lambda kv: window_order(kv[0])):
        groups = sorted(in_bucket, key=lambda e: (-e.count, e.error))[:limit]
        rows: list[dict[str, Value]] = [
            {
                "error": e.error,
                "count": e.count,
                "key": e.key,
                "first": when(e.first_time),
                "last": when(e.last_time),
                "sample": e.sample[:sample_chars] + ("…" if len(e.sample) > sample_chars else ""),
            }
            for e in groups
        ]
        events: list[dict[str, Value]] = [
            {
                "error": e.error,
                "time": when(ev.time),
                "correlation_id": ev.correlation_id,
                "key": ev.key,
                "user": ev.user,
                "project": ev.project,
            }
            for e in groups
            for ev in e.events
        ]
        failed = counted(sum(e.count for e in in_bucket), "failed or raising request")
        summary = f"{failed} in {counted(len(in_bucket), 'group')}"
        sections += [
            Section(None, ERROR_COLUMNS, rows, notes=[summary], window=window(bucket, interval)),
            Section("Events", EVENT_COLUMNS, events, window=window(bucket, interval)),
        ]
    if not sections:
        sections = [Section(None, ERROR_COLUMNS, [], notes=["0 failed or raising requests in 0 groups"]),
                    Section("Events", EVENT_COLUMNS, [])]  # fmt: skip
    return sections


COMPARE_METRICS = ("count", "rps", "p99", "p95", "median", "score", "perc_failed")


def check_comparable(a: tuple[str, logparse.LogReport], b: tuple[str, logparse.LogReport]) -> None:
    """ViewError unless both (name, report) inputs are GitLab logs of one type, or empty; names the input at
    fault."""
    for name, report in (a, b):
        if report.log_type is None and report.lines:
            raise ViewError(f"{name}: no GitLab log lines recognised; try --type")
    (name_a, report_a), (name_b, report_b) = a, b
    if report_a.lines and report_b.lines and report_a.log_type != report_b.log_type:
        raise ViewError(f"cannot compare {report_a.log_type} ({name_a}) with {report_b.log_type} ({name_b})")


def compare_sections(a: logparse.LogReport, b: logparse.LogReport, sort_by: str, limit: int) -> list[Section]:
    """Two inputs side by side per key with deltas, then the keys only one of them has."""
    total_a, total_b = a.totals(), b.totals()
    return compare_rows(
        a.log_type or b.log_type,
        ({k.key: stat_row(k) for k in a.key_stats()}, stat_row(total_a[0]) if total_a else None),
        ({k.key: stat_row(k) for k in b.key_stats()}, stat_row(total_b[0]) if total_b else None),
        sort_by,
        limit,
    )


Rows = dict[str, dict[str, Value]]
"""Stats table rows by key."""


def compare_rows(
    log_type: str | None,
    a: tuple[Rows, dict[str, Value] | None],
    b: tuple[Rows, dict[str, Value] | None],
    sort_by: str,
    limit: int,
) -> list[Section]:
    """The compare view from two sides' rows and totals rows (`stat_row`'s columns)."""
    (rows_a, total_a), (rows_b, total_b) = a, b
    metrics = COMPARE_METRICS
    columns: list[Column] = [key_column(log_type)]
    for m in metrics:
        base = STAT_COLUMNS[m]
        columns += [
            Column(f"{m}_a", f"{base.header} A", base.fmt),
            Column(f"{m}_b", f"{base.header} B", base.fmt),
            Column(f"{m}_delta", f"Δ{base.header}", base.fmt),
        ]
    allowed = ["key", *(c.name for c in columns[1:]), *metrics]
    sort_field = resolve_field(sort_by, allowed)
    if sort_field in metrics:
        sort_field = f"{sort_field}_delta"

    def pair(key: str, ra: dict[str, Value] | None, rb: dict[str, Value] | None) -> dict[str, Value]:
        r: dict[str, Value] = {"key": key}
        for m in metrics:
            va = ra.get(m) if ra else None
            vb = rb.get(m) if rb else None
            r[f"{m}_a"], r[f"{m}_b"] = va, vb
            # int - int stays int: a count's delta is a whole number, in JSON and CSV too (not 6.0).
            r[f"{m}_delta"] = vb - va if isinstance(va, int | float) and isinstance(vb, int | float) else None
        return r

    common = [pair(k, rows_a[k], rows_b[k]) for k in rows_a.keys() & rows_b.keys()]
    if sort_field.endswith("_delta"):
        common.sort(key=lambda r: str(r["key"]))
        common.sort(key=lambda r: abs(_num(r[sort_field])), reverse=True)
    else:
        common = sort_rows(common, sort_field)
    totals = pair("TOTAL", total_a, total_b)
    sections = [Section("In both", columns, common[:limit], totals)]
    only_cols = [columns[0], *(STAT_COLUMNS[m] for m in metrics)]
    for label, mine, other in (("A", rows_a, rows_b), ("B", rows_b, rows_a)):
        only = sort_rows([r for k, r in mine.items() if k not in other], "score")
        sections.append(Section(f"Only in {label} ({counted(len(only), 'key')})", only_cols, only[:limit]))
    return sections
