"""`casefolio reindex`: extract the text of every version again (search/)."""

from __future__ import annotations

from typing import Annotated

import typer

from casefolio.cli._common import console, id_option, load_settings, run
from casefolio.db import migrate
from casefolio.db.engine import Database
from casefolio.db.models import Project
from casefolio.domain.errors import NotFound
from casefolio.search.index import Indexer, reindex


def register(app: typer.Typer) -> None:
    app.command(name="reindex")(reindex_command)


def reindex_command(
    project: Annotated[
        int | None, id_option("--project", help="Only this project's documents.")
    ] = None,
    queue_only: Annotated[
        bool,
        typer.Option(
            "--queue-only", help="Only queue the versions; the running workers extract them."
        ),
    ] = False,
) -> None:
    """Queue every version (of one project) for text extraction again, then extract them in
    this process (text already extracted stays searchable until replaced)."""
    settings = load_settings()

    async def work() -> tuple[int, int]:
        await migrate.upgrade_async(settings)
        db = Database.open(settings)
        try:
            async with db.write() as session:
                if project is not None and await session.get(Project, project) is None:
                    raise NotFound(f"Project {project} not found.")
                queued = await reindex(session, project_id=project)
            extracted = 0
            if not queue_only:
                indexer = Indexer(settings, db)
                try:
                    while await indexer.queue():  # what the outbox has not queued yet
                        pass
                    while done := await indexer.extract_due():
                        extracted += done
                finally:
                    await indexer.close()
            return queued, extracted
        finally:
            await db.close()

    queued, extracted = run(work)
    if queue_only:
        console.print(f"Queued {queued} version(s); the workers extract their text.")
    else:
        console.print(f"Queued {queued} version(s); extracted {extracted}.")
