"""Rendering: terminal tables never cut a number and print data as text; CSV stays one table."""

import csv
import io
import json

import pytest
from rich.console import Console

from outrider.stats import views
from outrider.stats.render import (
    Column,
    Section,
    print_tables,
    stderr_console,
    stdout_console,
    text,
    to_csv,
    to_json,
    to_markdown,
)

KEY = Column("key", "CONTROLLER", text, numeric=False)
NUMBERS = [Column("p99", "P99_ms"), Column("score", "SCORE")]
LONG_KEY = "Repositories::GitHttpController#git_upload_pack"


def terminal(width: int, *sections: Section) -> str:
    out = io.StringIO()
    print_tables(sections, Console(file=out, width=width, force_terminal=True, color_system=None))
    return out.getvalue()


def section(*keys: str) -> Section:
    return Section(None, [KEY, *NUMBERS], [{"key": k, "p99": 6017.0, "score": 252715.3} for k in keys])


@pytest.mark.parametrize("width", [10, 40, 60, 200])
def test_numbers_are_never_cut_however_narrow_the_terminal(width: int) -> None:
    rows = terminal(width, section(LONG_KEY)).splitlines()[2:]
    assert rows
    assert all("6017.0" in r and "252715.3" in r for r in rows)


def test_names_are_shortened_only_when_that_makes_the_table_fit() -> None:
    fits = terminal(50, section(LONG_KEY))
    assert LONG_KEY not in fits
    assert "Repositories::GitHttpControll…   6017.0   252715.3" in fits
    assert max(len(line) for line in fits.splitlines()) <= 50
    # Too narrow even with short names: nothing is shortened, the terminal wraps the lines.
    assert LONG_KEY in terminal(30, section(LONG_KEY))


def test_cells_are_text_not_markup() -> None:
    keys = ["Foo[/]", "/g/p/-/blob/main/pages/[id].js", "[filtered]", "[bold]x[/bold]"]
    out = terminal(200, section(*keys))
    assert all(k in out for k in keys)


def test_the_consoles_print_emoji_codes_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    named = Section("web-1:x:.log", [KEY, *NUMBERS], [{"key": "A :thumbs_up: B", "p99": 1.0, "score": 2.0}],
                    notes=["from :fire: to :x:"])  # fmt: skip
    print_tables([named], stdout_console())
    stderr_console().print("cannot read web-1:x:.log")
    out, err = capsys.readouterr()
    assert "web-1:x:.log" in out
    assert "A :thumbs_up: B" in out
    assert "from :fire: to :x:" in out
    assert err == "cannot read web-1:x:.log\n"


def test_csv_is_one_table_whatever_the_sections_columns() -> None:
    errors = Section("Errors", [Column("error", "ERROR", text, numeric=False), Column("count", "COUNT")],
                     [{"error": "500", "count": 2}])  # fmt: skip
    events = Section("Events", [Column("status", "STATUS", text, numeric=False), Column("time", "TIME", text)],
                     [{"status": "500", "time": "2024-05-01 10:00:20"}])  # fmt: skip
    rows = list(csv.reader(io.StringIO(to_csv([([errors, events], {"log_type": "production_json"})]))))
    assert rows == [
        ["section", "error", "count", "status", "time"],
        ["Errors", "500", "2", "", ""],
        ["Events", "", "", "500", "2024-05-01 10:00:20"],
    ]


def test_csv_of_several_log_types_has_one_header_and_a_log_type_column() -> None:
    docs = [([section("a")], {"log_type": "production_json"}), ([section("b")], {"log_type": "api_json"})]
    rows = list(csv.reader(io.StringIO(to_csv(docs))))
    assert rows == [
        ["log_type", "key", "p99", "score"],
        ["production_json", "a", "6017.0", "252715.3"],
        ["api_json", "b", "6017.0", "252715.3"],
    ]


def test_a_line_break_in_a_name_stays_in_its_markdown_cell() -> None:
    rows = [{"key": "a|b\nc\r\nd\re", "p99": 1.0, "score": 2.0}]
    out = to_markdown([Section(None, [KEY, *NUMBERS], rows, {"key": "TOTAL\n", "p99": 1.0, "score": 2.0})])
    assert out.splitlines() == [
        "| CONTROLLER | P99_ms | SCORE |",
        "|---|---:|---:|",
        "| a\\|b<br>c<br>d<br>e | 1.0 | 2.0 |",
        "| **TOTAL<br>** | **1.0** | **2.0** |",
    ]


def test_json_and_csv_keep_small_figures() -> None:
    rows = [{"key": "sparse", "p99": 0.000347222, "score": 1234.56789}]
    doc = json.loads(to_json([Section(None, [KEY, *NUMBERS], rows)], {}))
    assert doc["sections"][0]["rows"] == [{"key": "sparse", "p99": 0.000347, "score": 1234.568}]
    assert to_csv([([Section(None, [KEY, *NUMBERS], rows)], {})]).splitlines()[1] == "sparse,0.000347,1234.568"


@pytest.mark.parametrize(
    ("ms", "printed"),
    [
        (12.04, "12.0ms"),
        (999.96, "1.0s"),  # rounded before the unit is chosen, never `1000.0ms`
        (59_980, "1m00.0s"),
        (119_960, "2m00.0s"),
        (557_000, "9m17.0s"),
        (3_599_970, "1h00m00.0s"),
        (7_199_960, "2h00m00.0s"),
        (float("nan"), "-"),
    ],
)
def test_durations_print_as_fast_stats_does(ms: float, printed: str) -> None:
    assert views.human_ms(ms) == printed


@pytest.mark.parametrize(("n", "printed"), [(900, "900 B"), (1_048_575, "1.00 MiB"), (8 * 2**30, "8.00 GiB")])
def test_bytes_print_in_binary_units(n: int, printed: str) -> None:
    assert views.human_bytes(n) == printed
