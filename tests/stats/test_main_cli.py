"""`outrider stats …` through the top-level `outrider` command, as users type it."""

from pathlib import Path

from typer.testing import CliRunner

from outrider.cli import app


def test_outrider_stats_file_prints_the_default_table(logs: Path) -> None:
    result = CliRunner().invoke(app, ["stats", str(logs / "gitaly.log"), "--print-fields", "count"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split() == ["METHOD", "COUNT"]


def test_outrider_stats_subcommands_and_help(logs: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["stats", "errors", str(logs / "gitaly.log")]).exit_code == 0
    help_text = runner.invoke(app, ["stats", "--help"]).stdout
    for command in ("table", "top", "errors", "compare"):
        assert command in help_text


def test_h_is_help_everywhere() -> None:
    runner = CliRunner()
    for args in (["-h"], ["stats", "-h"], ["stats", "top", "-h"], ["engagements", "list", "-h"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert "No such option" not in result.output
        assert "Usage: " in result.stdout
