"""The `casefolio` command: serve, set up, administer, move data in and out."""

from __future__ import annotations

import typer

from casefolio.cli import admin, audit, maintenance, server, transfer, worker

app = typer.Typer(
    help="casefolio: a document store for legal case work, driven over HTTP.",
    no_args_is_help=True,
    add_completion=False,
)
server.register(app)
admin.register(app)
transfer.register(app)
maintenance.register(app)
audit.register(app)
worker.register(app)
