"""`casefolio gc`: remove what no document needs any more."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from casefolio.cli._common import console, load_settings, run
from casefolio.cli.transfer import open_stores
from casefolio.domain import gc

#: A century: longer keeps everything just the same, and far longer reaches past year 1.
MAX_GRACE_MINUTES = 100 * 365 * 24 * 60


def register(app: typer.Typer) -> None:
    app.command(name="gc")(gc_command)


def gc_command(
    grace_minutes: Annotated[
        int,
        typer.Option(
            min=0,
            max=MAX_GRACE_MINUTES,
            help="Keep anything younger than this: it may belong to an upload in flight.",
        ),
    ] = 60,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed.")
    ] = False,
) -> None:
    """Delete blobs that no document version references and stale staging files, after
    removing v3 uploads without a container that waited longer than
    CASEFOLIO_UNCLAIMED_ATTACHMENT_HOURS to be claimed.

    Destructive unless --dry-run. Blobs and staging files younger than the grace period
    are kept, so uploads that are still running are safe.
    """
    settings = load_settings()

    async def work() -> gc.GcReport:
        async with open_stores(settings) as (db, blobs):
            return await gc.collect(
                db,
                blobs,
                grace=timedelta(minutes=grace_minutes),
                unclaimed_for=timedelta(hours=settings.unclaimed_attachment_hours),
                dry_run=dry_run,
            )

    report = run(work)
    verb = "would remove" if dry_run else "removed"
    for blob in report.blobs:
        say(f"{verb} blob {blob.name} (modified {blob.modified:%Y-%m-%d %H:%M:%S}Z)")
    for staged in report.staging:
        say(f"{verb} staging file {staged.name} (modified {staged.modified:%Y-%m-%d %H:%M:%S}Z)")
    for version_id in report.unclaimed:
        say(f"{verb} unclaimed attachment {version_id}")
    say(
        f"{verb.capitalize()} {len(report.unclaimed)} unclaimed attachment(s), "
        f"{len(report.blobs)} orphan blob(s) and "
        f"{len(report.staging)} staging file(s); kept {report.kept_referenced} referenced blob(s) "
        f"and {report.kept_young} unreferenced younger than {grace_minutes} minute(s)."
    )


def say(line: str) -> None:
    # One line per item, never wrapped, no markup or colour: other programs read this output.
    console.print(line, soft_wrap=True, markup=False, highlight=False)
