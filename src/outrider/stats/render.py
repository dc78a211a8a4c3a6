"""Rendering a view's sections as a terminal table, CSV, JSON or Markdown."""

import csv
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NoReturn

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

Value = str | int | float | None


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


def fixed(digits: int) -> Callable[[Value], str]:
    """Format numbers with `digits` decimals."""

    def fmt(v: Value) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return str(v)

    return fmt


def text(v: Value) -> str:
    """Names and times as they are; a missing one as `-`."""
    return "-" if v is None else str(v)


CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def printable(v: str) -> str:
    """`v` with each control character as U+FFFD: names and keys come from customers' logs (or a tracker that
    stored them before the parser replaced these), and an ESC sequence would drive the terminal (clear it, retitle
    it, forge a link) and a newline forge a line."""
    return CONTROL.sub("\ufffd", v)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def inert(v: Value) -> Value:
    """A CSV text cell printable, and one a spreadsheet would run as a formula (`=HYPERLINK(…)` in a key) led by
    `'`, as OWASP's CSV injection advice says. Numbers stay numbers."""
    if not isinstance(v, str):
        return v
    return ("'" if v.startswith(FORMULA_START) else "") + printable(v)


ONE_DECIMAL = fixed(1)
# Like rich's SIMPLE_HEAD, but the rule also separates the totals section.
RULED = box.Box("    \n    \n ── \n    \n ── \n    \n    \n    \n")


@dataclass(frozen=True)
class Column:
    """A column: `name` in CSV/JSON and --print-fields, `header` in tables, `fmt` for table cells."""

    name: str
    header: str
    fmt: Callable[[Value], str] = ONE_DECIMAL
    numeric: bool = True


def when(epoch: float | None) -> str:
    """UTC time as people read it: `YYYY-MM-DD HH:MM:SS`."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(epoch: float | None) -> str | None:
    """UTC time as programs read it: ISO 8601, `YYYY-MM-DDTHH:MM:SSZ`."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Window:
    """An --interval window, [start, start + seconds), or the lines without a usable time (`start` None)."""

    start: int | None
    seconds: int

    @property
    def end(self) -> int | None:
        return None if self.start is None else self.start + self.seconds


@dataclass
class Section:
    """One table of a view: a title, rows keyed by column name, an optional totals row, and the time window it
    covers with --interval (shown as fast-stats' `>>> 2024-05-01 10:00:00 <<<` before the title in tables, as
    ISO 8601 `start`/`end` fields in CSV and JSON)."""

    title: str | None
    columns: Sequence[Column]
    rows: list[dict[str, Value]]
    totals: dict[str, Value] | None = None
    notes: list[str] = field(default_factory=list)
    window: Window | None = None

    def heading(self) -> str | None:
        """The title for people: the window as fast-stats heads it, then the title."""
        if self.window is None:
            return self.title
        shown = "(no time)" if self.window.start is None else when(self.window.start)
        return " ".join(filter(None, [f">>> {shown} <<<", self.title]))

    def name(self) -> str | None:
        """The title for programs: the window's ISO start (or `(no time)`), then the title; no decoration."""
        if self.window is None:
            return self.title
        return " ".join(filter(None, [iso(self.window.start) or "(no time)", self.title]))


def _rounded(v: Value) -> Value:
    """Three decimals, or three significant digits below 0.1 (a sparse log's RPS of 0.00035 is not 0)."""
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        return round(v, 3) if abs(v) >= 0.1 else float(f"{v:.3g}")
    return v


def _record(columns: Sequence[Column], row: dict[str, Value]) -> dict[str, Value]:
    return {c.name: _rounded(row.get(c.name)) for c in columns}


def to_json(sections: Sequence[Section], meta: dict[str, Any]) -> str:
    """One JSON document: `meta` plus each section's rows and totals."""
    doc = dict(meta)
    doc["sections"] = [
        {
            "title": s.name(),
            **({"start": iso(s.window.start), "end": iso(s.window.end)} if s.window else {}),
            "rows": [_record(s.columns, r) for r in s.rows],
            "totals": _record(s.columns, s.totals) if s.totals else None,
            "notes": s.notes,
        }
        for s in sections
    ]
    return json.dumps(doc, indent=2, allow_nan=False, default=str)


def to_csv(docs: Sequence[tuple[Sequence[Section], dict[str, Any]]]) -> str:
    """One CSV table for all `docs` (e.g. one a log type), whatever their sections' columns: one header row with
    every column any section has (a cell is blank where its section has no such column), led by a `log_type`
    column when there are several documents, a `section` column when there are several titled sections, and ISO 8601
    `start` and `end` columns with --interval."""
    sections = [(meta.get("log_type"), s) for doc_sections, meta in docs for s in doc_sections]
    names = list(dict.fromkeys(c.name for _, s in sections for c in s.columns))
    several_types, titled = len(docs) > 1, len(sections) > 1 and any(s.name() for _, s in sections)
    windowed = any(s.window for _, s in sections)
    lead = (["log_type"] if several_types else []) + (["section"] if titled else [])
    lead += ["start", "end"] if windowed else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(lead + names)
    texts = {c.name for _, s in sections for c in s.columns if not c.numeric}
    for log_type, s in sections:
        ours = {c.name for c in s.columns}
        for r in s.rows + ([s.totals] if s.totals else []):
            cells = [_rounded(r.get(name)) if name in ours else None for name in names]
            cells = [inert(v) if name in texts else v for name, v in zip(names, cells, strict=True)]
            first = ([log_type] if several_types else []) + ([s.name()] if titled else [])
            first += [iso(s.window.start), iso(s.window.end)] if s.window else [None, None] if windowed else []
            writer.writerow(["" if v is None else v for v in first + cells])
    return out.getvalue()


def _cells(s: Section, row: dict[str, Value]) -> list[str]:
    return [c.fmt(row.get(c.name)) for c in s.columns]


MARKDOWN_LINE_BREAK = re.compile(r"\r\n?|\n")


def _markdown_cell(v: str) -> str:
    """A cell's text kept in its cell: `|` escaped, a line break (which would end the table row) as `<br>`, other
    control characters as U+FFFD."""
    return printable(MARKDOWN_LINE_BREAK.sub("<br>", v.replace("|", "\\|")))


def to_markdown(sections: Sequence[Section]) -> str:
    """GitHub-flavoured Markdown tables, one per section, totals in bold."""
    parts = []
    for s in sections:
        lines = [f"### {s.heading()}", ""] if s.heading() else []
        lines.append("| " + " | ".join(c.header for c in s.columns) + " |")
        lines.append("|" + "|".join("---:" if c.numeric else "---" for c in s.columns) + "|")
        for r in s.rows:
            lines.append("| " + " | ".join(_markdown_cell(v) for v in _cells(s, r)) + " |")
        if s.totals:
            lines.append("| " + " | ".join(f"**{_markdown_cell(v)}**" for v in _cells(s, s.totals)) + " |")
        lines.extend(["", *s.notes] if s.notes else [])
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def print_tables(sections: Sequence[Section], console: Console) -> None:
    """Plain aligned tables for the terminal, totals after a rule; a section without columns is its notes alone.

    Cells are plain text (a key like `Foo[/]` or a path like `pages/[id].js` is not rich markup). Numbers are never
    cut: on a terminal too narrow for a table, the names are shortened (`…`, down to NAME_MIN characters) if that
    makes it fit; otherwise the lines run past the edge for the terminal to wrap (or `less -S` to scroll).
    """
    for s in sections:
        if heading := s.heading():
            console.print(heading, highlight=False, markup=False)
        if s.columns:
            _print_table(s, console)
        for note in s.notes:
            console.print(note, highlight=False, markup=False)


def _print_table(s: Section, console: Console) -> None:
    table = Table(box=RULED, show_edge=False, pad_edge=False, header_style="bold")
    for c in s.columns:
        table.add_column(c.header, justify="right" if c.numeric else "left", no_wrap=True)
    for r in s.rows:
        table.add_row(*(Text(printable(v)) for v in _cells(s, r)))
    if s.totals:
        table.add_section()
        table.add_row(*(Text(printable(v)) for v in _cells(s, s.totals)), style="bold")
    width, console.width = console.width, _fit(table, console)
    try:
        console.print(table)
    finally:
        console.width = width


NAME_MIN = 24


def _fit(table: Table, console: Console) -> int:
    """The width to print `table` at: the console's, after shortening its names if that makes the table fit;
    otherwise the table's own, names whole (`Console.print` would squeeze every column into the console's width,
    numbers too)."""
    natural = console.measure(table, options=console.options.update_width(1 << 16)).maximum
    excess = natural - console.width
    if excess <= 0:
        return console.width
    if not console.is_terminal:  # a pipe or a file: names whole
        return natural
    names = [c for c in table.columns if c.justify == "left"]
    longest = {id(c): max([len(str(c.header))] + [len(x) for x in c.cells if isinstance(x, Text)]) for c in names}
    if sum(max(longest[id(c)] - NAME_MIN, 0) for c in names) < excess:
        return natural  # too wide even so: the terminal wraps the lines, or `less -S` scrolls them
    for column in names:
        cut = min(excess, max(longest[id(column)] - NAME_MIN, 0))
        if cut:
            column.max_width, column.overflow = longest[id(column)] - cut, "ellipsis"
            excess -= cut
    return console.width


def emit(sections: Sequence[Section], fmt: OutputFormat, meta: dict[str, Any], console: Console) -> None:
    """Write the sections to `console` in the chosen format."""
    if fmt is OutputFormat.table:
        print_tables(sections, console)
        return
    text = {
        OutputFormat.csv: lambda: to_csv([(sections, meta)]),
        OutputFormat.json: lambda: to_json(sections, meta) + "\n",
        OutputFormat.markdown: lambda: to_markdown(sections),
    }[fmt]()
    console.file.write(text)


def quit_quietly() -> NoReturn:
    """End the command when the reader of stdout went away (`| head -1`): it has what it wanted, so exit 0 without a
    word, as cat and grep do. Later writes (the flush at exit) go to /dev/null, as in the Python docs' SIGPIPE note."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise SystemExit(0)


class _Stdout(Console):
    def on_broken_pipe(self) -> None:
        quit_quietly()  # rich's own exits 1, which reads as a failure in `set -o pipefail` scripts


def stdout_console(markup: bool = True) -> Console:
    """The console tables go to: on a terminal its width; off one (a pipe, a file) wide tables keep their natural
    width instead of rich's assumed 80 columns. `markup=False` where the text printed is data (names, keys); never
    emoji codes (`:x:` in a key or a customer's name is text)."""
    out = _Stdout(highlight=False, soft_wrap=True, markup=markup, emoji=False)
    return out if out.is_terminal else _Stdout(highlight=False, width=1000, markup=markup, emoji=False)


def stderr_console() -> Console:
    """Messages on stderr, one line each whatever the width (a wrapped path cannot be copied or grepped)."""
    return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def emit_all(docs: Sequence[tuple[Sequence[Section], dict[str, Any]]], fmt: OutputFormat, console: Console) -> None:
    """Several documents (e.g. one a log type), each its sections and meta; as JSON one list and as CSV one table,
    so the output stays one JSON value or one CSV table; as Markdown each under a `## <log type>` heading (tables
    back to back would render as one), sections' `###` headings below it; as tables each after its log type's name."""
    if fmt is OutputFormat.csv:
        console.file.write(to_csv(docs))
    elif fmt is OutputFormat.json and len(docs) > 1:
        console.file.write(
            json.dumps([json.loads(to_json(sections, meta)) for sections, meta in docs], indent=2) + "\n"
        )
    elif fmt is OutputFormat.markdown and len(docs) > 1:
        console.file.write(
            "\n".join(
                f"## {meta.get('log_type') or 'unrecognised'}\n\n{to_markdown(sections)}" for sections, meta in docs
            )
        )
    else:
        for i, (sections, meta) in enumerate(docs):
            if fmt is OutputFormat.table and len(docs) > 1:  # which log each table is, as Markdown's headings say
                console.print(("\n" if i else "") + (meta.get("log_type") or "unrecognised"), style="bold",
                              highlight=False, markup=False)  # fmt: skip
            emit(sections, fmt, meta, console)
