"""The `casefolio` command: serve, set up, administer, move data in and out."""

from __future__ import annotations

from typing import Annotated

import typer

from casefolio import __version__
from casefolio.cli import (
    admin,
    audit,
    maintenance,
    projects,
    retention,
    search,
    server,
    transfer,
    worker,
)

app = typer.Typer(
    help="casefolio: a document store for legal case work, driven over HTTP.",
    no_args_is_help=True,
    add_completion=False,
    # Help paragraphs reflowed to the terminal (docstrings break lines at 100 columns).
    rich_markup_mode="markdown",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"casefolio {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """casefolio: a document store for legal case work, driven over HTTP."""


server.register(app)
admin.register(app)
projects.register(app)
transfer.register(app)
maintenance.register(app)
audit.register(app)
retention.register(app)
worker.register(app)
search.register(app)
