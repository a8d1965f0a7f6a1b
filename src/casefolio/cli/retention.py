"""`casefolio retention report`: what the retention rules would do now, changing nothing."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from casefolio.cli._common import console, id_option, load_settings, run
from casefolio.db import migrate
from casefolio.db.engine import Database
from casefolio.db.types import utcnow
from casefolio.domain import retention

retention_app = typer.Typer(help="Retention rules of projects.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")


@retention_app.command("report")
def report_command(
    project: Annotated[
        int | None, id_option("--project", help="Only this project (its id).")
    ] = None,
) -> None:
    """List the documents past their project's retention period and what the daily job
    will do with each: trash, review, or nothing while a legal hold covers it (held).
    Read-only: nothing is changed."""
    settings = load_settings()

    async def work() -> list[retention.Planned]:
        await migrate.upgrade_async(settings)
        db = Database.open(settings)
        try:
            async with db.read() as session:
                return await retention.plan(session, now=utcnow(), project_id=project)
        finally:
            await db.close()

    planned = run(work)
    table = Table("project", "document", "title", "last change", "action", "holds")
    for p in planned:
        table.add_row(
            str(p.project_id),
            str(p.document_id),
            p.title,
            f"{p.updated_at:%Y-%m-%d}",
            p.action,
            ", ".join(map(str, p.holds)),
        )
    if planned:
        console.print(table)
    counts = {a: sum(1 for p in planned if p.action == a) for a in ("trash", "review", "held")}
    console.print(
        f"{counts['trash']} to the trash, {counts['review']} due for review, "
        f"{counts['held']} kept by legal holds. Nothing was changed.",
        soft_wrap=True,
    )
