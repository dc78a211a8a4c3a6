"""Rendering a view's sections as a terminal table, CSV, JSON or Markdown."""

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

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


@dataclass
class Section:
    """One table of a view: a title (e.g. the interval), rows keyed by column name, and an optional totals row."""

    title: str | None
    columns: Sequence[Column]
    rows: list[dict[str, Value]]
    totals: dict[str, Value] | None = None
    notes: list[str] = field(default_factory=list)


def _rounded(v: Value) -> Value:
    if isinstance(v, float):
        return round(v, 3) if math.isfinite(v) else None
    return v


def _record(columns: Sequence[Column], row: dict[str, Value]) -> dict[str, Value]:
    return {c.name: _rounded(row.get(c.name)) for c in columns}


def to_json(sections: Sequence[Section], meta: dict[str, Any]) -> str:
    """One JSON document: `meta` plus each section's rows and totals."""
    doc = dict(meta)
    doc["sections"] = [
        {
            "title": s.title,
            "rows": [_record(s.columns, r) for r in s.rows],
            "totals": _record(s.columns, s.totals) if s.totals else None,
            "notes": s.notes,
        }
        for s in sections
    ]
    return json.dumps(doc, indent=2, allow_nan=False, default=str)


def to_csv(sections: Sequence[Section]) -> str:
    """CSV with one header row; a leading `section` column tells sections apart when there are several."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    several = len(sections) > 1
    header_done = False
    for s in sections:
        if not header_done:
            writer.writerow((["section"] if several else []) + [c.name for c in s.columns])
            header_done = True
        rows = s.rows + ([s.totals] if s.totals else [])
        for r in rows:
            cells = [_rounded(r.get(c.name)) for c in s.columns]
            writer.writerow(([s.title] if several else []) + ["" if v is None else v for v in cells])
    return out.getvalue()


def _cells(s: Section, row: dict[str, Value]) -> list[str]:
    return [c.fmt(row.get(c.name)) for c in s.columns]


def to_markdown(sections: Sequence[Section]) -> str:
    """GitHub-flavoured Markdown tables, one per section, totals in bold."""
    parts = []
    for s in sections:
        lines = [f"### {s.title}", ""] if s.title else []
        lines.append("| " + " | ".join(c.header for c in s.columns) + " |")
        lines.append("|" + "|".join("---:" if c.numeric else "---" for c in s.columns) + "|")
        for r in s.rows:
            lines.append("| " + " | ".join(v.replace("|", "\\|") for v in _cells(s, r)) + " |")
        if s.totals:
            lines.append("| " + " | ".join(f"**{v}**" for v in _cells(s, s.totals)) + " |")
        lines.extend(["", *s.notes] if s.notes else [])
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def print_tables(sections: Sequence[Section], console: Console) -> None:
    """Plain aligned tables for the terminal, totals after a rule."""
    for s in sections:
        if s.title:
            console.print(s.title, highlight=False, markup=False)
        table = Table(box=RULED, show_edge=False, pad_edge=False, header_style="bold")
        for c in s.columns:
            table.add_column(c.header, justify="right" if c.numeric else "left", no_wrap=True, overflow="fold")
        for r in s.rows:
            table.add_row(*_cells(s, r))
        if s.totals:
            table.add_section()
            table.add_row(*_cells(s, s.totals), style="bold")
        console.print(table)
        for note in s.notes:
            console.print(note, highlight=False, markup=False)


def emit(sections: Sequence[Section], fmt: OutputFormat, meta: dict[str, Any], console: Console) -> None:
    """Write the sections to `console` in the chosen format."""
    if fmt is OutputFormat.table:
        print_tables(sections, console)
        return
    text = {
        OutputFormat.csv: lambda: to_csv(sections),
        OutputFormat.json: lambda: to_json(sections, meta) + "\n",
        OutputFormat.markdown: lambda: to_markdown(sections),
    }[fmt]()
    console.file.write(text)


def stdout_console() -> Console:
    """The console tables go to: on a terminal its width; off one (a pipe, a file) wide tables keep their natural
    width instead of rich's assumed 80 columns."""
    out = Console(highlight=False, soft_wrap=True)
    return out if out.is_terminal else Console(highlight=False, width=1000)


def emit_all(docs: Sequence[tuple[Sequence[Section], dict[str, Any]]], fmt: OutputFormat, console: Console) -> None:
    """Several documents (e.g. one a log type), each its sections and meta; as JSON one list, so the output stays
    one JSON value."""
    if fmt is OutputFormat.json and len(docs) > 1:
        console.file.write(
            json.dumps([json.loads(to_json(sections, meta)) for sections, meta in docs], indent=2) + "\n"
        )
    else:
        for sections, meta in docs:
            emit(sections, fmt, meta, console)
