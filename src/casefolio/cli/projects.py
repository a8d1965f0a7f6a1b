"""`casefolio projects`: create and list projects (matters) without the API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.cli._common import AsOption, console, id_option, run_in_transaction
from casefolio.domain import projects, transfer
from casefolio.domain.pages import MAX_LIMIT, PageRequest

projects_app = typer.Typer(help="Create and list projects (matters).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(projects_app, name="projects")


@projects_app.command("create")
def create_project(
    name: Annotated[str, typer.Argument(help="The project's name.", metavar="NAME")],
    template: Annotated[
        int | None, id_option("--template", help="Id of a template to copy in.")
    ] = None,
    download_via_api: Annotated[
        bool,
        typer.Option("--download-via-api", help="Allow downloading its documents through the API."),
    ] = False,
    as_email: AsOption = None,
) -> None:
    """Create a project and print its id (for `casefolio import --project ID`)."""

    async def work(session: AsyncSession) -> int:
        who = await transfer.acting_principal(session, email=as_email)
        project = await projects.create(
            session,
            who=who,
            name=name,
            template_id=template,
            download_via_api=download_via_api,
        )
        return project.id

    project_id = run_in_transaction(work)
    console.print(f"Created project {project_id}.", highlight=False)


@projects_app.command("list")
def list_projects(as_email: AsOption = None) -> None:
    """List the projects (the first 1000) the acting user can see."""

    async def work(session: AsyncSession) -> list[tuple[str, ...]]:
        who = await transfer.acting_principal(session, email=as_email)
        page = await projects.list_page(session, who=who, page=PageRequest(limit=MAX_LIMIT))
        return [
            (
                str(p.id),
                p.name,
                str(p.template_id or ""),
                "yes" if p.download_via_api else "no",
                f"{p.created_at:%Y-%m-%d %H:%M}",
            )
            for p, _role in page.items
        ]

    table = Table("id", "name", "template", "download via API", "created (UTC)")
    for row in run_in_transaction(work):
        table.add_row(*row)
    console.print(table)
