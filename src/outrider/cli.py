"""The `outrider` command."""

import typer

from outrider import up as stack
from outrider.deadletters import app as dead_letters_app
from outrider.devstack import StackError
from outrider.engagements import app as engagements_app
from outrider.ship.cli import app as ship_app
from outrider.stats.cli import app as stats_app

app = typer.Typer(
    help="Outrider: continuous evidence for self-hosted developer-platform rollouts.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand
)
app.add_typer(stats_app, name="stats")
app.add_typer(engagements_app, name="engagements")
app.add_typer(ship_app, name="ship")
app.add_typer(dead_letters_app, name="dead-letters")


@app.command()
def up() -> None:
    """Start PostgreSQL, Kafka and the four services on loopback, then ship a sample log to a demo engagement."""
    try:
        stack.up()
    except StackError as exc:
        stack.console.print(f"error: {exc}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
def down() -> None:
    """Stop everything `outrider up` started."""
    stack.down()
