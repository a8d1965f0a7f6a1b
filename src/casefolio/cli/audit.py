"""`casefolio audit verify|export`: check the chain, write the trail as JSON lines."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from casefolio.cli._common import console, err_console, id_option, load_settings, run
from casefolio.config import Settings
from casefolio.db import migrate
from casefolio.db.engine import Database
from casefolio.outbound import audit, sealing

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


async def _open(settings: Settings) -> Database:
    await migrate.upgrade_async(settings)
    return Database.open(settings)


@audit_app.command("verify")
def verify_command() -> None:
    """Walk the hash chain; report the first entry that does not match (exit code 1)."""
    settings = load_settings()

    async def work() -> audit.Verdict:
        db = await _open(settings)
        try:
            async with db.write() as session:
                await sealing.seal(session)
            async with db.read() as session:
                return await audit.verify(session)
        finally:
            await db.close()

    verdict = run(work)
    if verdict.first_bad_id is not None:
        err_console.print(
            f"[red]Audit entry {verdict.first_bad_id} is not valid: {verdict.reason} "
            f"({verdict.checked} entries before it are intact).[/red]"
        )
        raise typer.Exit(1)
    pending = (
        f"; {verdict.unsealed} newer entries are not sealed yet (transactions still running "
        "when it was sealed)"
        if verdict.unsealed
        else ""
    )
    console.print(f"The audit trail is intact: {verdict.checked} entries checked{pending}.")


@audit_app.command("export")
def export_command(
    since: Annotated[
        datetime | None, typer.Option(help="Only entries at or after this time (UTC).")
    ] = None,
    project: Annotated[
        int | None, id_option("--project", help="Only entries of this project id.")
    ] = None,
) -> None:
    """Write the audit trail to standard output as JSON lines, oldest first."""
    settings = load_settings()
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)

    async def work() -> int:
        db = await _open(settings)
        count = 0
        try:
            async with db.write() as session:
                await sealing.seal(session)
            async with db.read() as session:
                async for entry in audit.export(session, since=since, project_id=project):
                    sys.stdout.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    count += 1
        finally:
            await db.close()
        return count

    count = run(work)
    err_console.print(f"{count} entries exported.")
