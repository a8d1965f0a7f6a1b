"""`casefolio import` and `casefolio export`: move a directory tree in and out of a project;
`casefolio backup`: copy a whole embedded installation; `casefolio check`: read every stored
file back. Each shows its progress, prints its failures and ends with a summary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Annotated

import anyio.to_thread
import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from casefolio.cli._common import (
    AsOption,
    console,
    err_console,
    id_option,
    load_settings,
    printable,
    run,
)
from casefolio.config import DATABASE_FILE, Settings
from casefolio.db import migrate
from casefolio.db.engine import Database
from casefolio.domain import backup, check, export, importing, transfer
from casefolio.domain.transfer import FileEvent, TransferReport
from casefolio.storage import BlobStore, open_blob_store

_MB = 1024 * 1024


def register(app: typer.Typer) -> None:
    app.command(name="import")(import_command)
    app.command(name="export")(export_command)
    app.command(name="backup")(backup_command)
    app.command(name="check")(check_command)


@asynccontextmanager
async def open_stores(settings: Settings) -> AsyncIterator[tuple[Database, BlobStore]]:
    """Migrate if needed, then yield the database and the blob store, closed afterwards."""
    await migrate.upgrade_async(settings)
    db = Database.open(settings)
    blobs = open_blob_store(settings)
    try:
        yield db, blobs
    finally:
        await blobs.close()
        await db.close()


class _FilesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} files/s", style="progress.data.speed")


class _MegabytesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0
        done = float(task.fields.get("bytes", 0))
        rate = done / _MB / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.1f} MB/s", style="progress.data.speed")


class _Display:
    """A progress bar fed by the domain's events; failures are printed above it.

    The bar appears once the work is planned: a refusal before that (an unknown project, no
    rights) is the only thing printed.
    """

    def __init__(self, label: str) -> None:
        self.progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            _FilesPerSecond(),
            _MegabytesPerSecond(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.progress.add_task(label, total=None, bytes=0)
        self.done_bytes = 0
        self.started = False

    def plan(self, files: int, size: int) -> None:
        self.progress.update(self.task, total=files)
        self.progress.start()
        self.started = True

    def close(self) -> None:
        if self.started:  # stopping a bar that never started still prints a blank line
            self.progress.stop()

    def file(self, event: FileEvent) -> None:
        said = f"{escape(printable(event.path))}: {escape(printable(event.message))}"
        if event.outcome == "failed":
            self.progress.console.print(f"[red]failed[/red] {said}")
        elif event.outcome == "missing":
            self.progress.console.print(f"[yellow]missing[/yellow] {said}")
        if not event.planned:
            return  # found while scanning: not among the files the bar counts
        if event.outcome != "failed":
            self.done_bytes += event.size
        self.progress.update(self.task, advance=1, bytes=self.done_bytes)


def _run_transfer(
    settings: Settings,
    label: str,
    as_email: str | None,
    job: Callable[..., Awaitable[TransferReport]],
) -> TransferReport:
    """Run an import or export `job` (its own arguments bound) as the user `as_email`, its
    progress shown under `label`, and return its report."""
    display = _Display(label)

    async def work() -> TransferReport:
        async with open_stores(settings) as (db, blobs):
            async with db.read() as session:
                who = await transfer.acting_principal(session, email=as_email)
            try:
                return await job(db, blobs, who=who, on_plan=display.plan, on_file=display.file)
            finally:
                display.close()

    return run(work)


def _summary(report: TransferReport, rows: list[tuple[str, str]]) -> None:
    table = Table("", "", show_header=False, title="Summary")
    for name, value in rows:
        table.add_row(name, value)
    seconds = max(report.seconds, 1e-9)
    table.add_row("bytes", f"{report.bytes:,} ({report.bytes / _MB / seconds:,.1f} MB/s)")
    table.add_row("seconds", f"{report.seconds:,.2f}")
    console.print(table)
    if report.failed:
        err_console.print(f"[red]{len(report.failed)} file(s) failed; see the lines above.[/red]")
        raise typer.Exit(1)


def import_command(
    path: Annotated[
        Path,
        typer.Argument(help="Directory to import.", exists=True, file_okay=False, readable=True),
    ],
    project: Annotated[int, id_option("--project", help="Project id to import into.")],
    folder: Annotated[
        int | None, id_option("--folder", help="Folder id to import under (default: root).")
    ] = None,
    as_email: AsOption = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=32, help="Files hashed and stored at the same time.")
    ] = 8,
) -> None:
    """Sync a directory tree into a project: sub-directories become folders, files documents.

    Re-running syncs: a file already filed in its folder (same name, same sha256) is
    skipped; a changed file becomes a new version of the document with its name there;
    documents whose file is no longer in the tree are listed as missing, never deleted.
    A problem with one file is reported and the run goes on; the exit code is 1 if any
    file failed.
    """
    settings = load_settings()
    job = partial(
        importing.import_tree,
        project_id=project,
        root=path,
        folder_id=folder,
        concurrency=concurrency,
        max_bytes=settings.max_upload_bytes,
    )
    report = _run_transfer(settings, "import", as_email, job)
    rate = (report.imported + report.versioned + report.skipped) / max(report.seconds, 1e-9)
    _summary(
        report,
        [
            ("new", f"{report.imported:,}"),
            ("new versions", f"{report.versioned:,}"),
            ("unchanged", f"{report.skipped:,}"),
            ("failed", f"{len(report.failed):,}"),
            ("missing (kept)", f"{len(report.missing):,}"),
            ("files/s", f"{rate:,.0f}"),
        ],
    )


def export_command(
    path: Annotated[Path, typer.Argument(help="New or empty directory to write into.")],
    project: Annotated[int, id_option("--project", help="Project id to export.")],
    as_email: AsOption = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=32, help="Files written at the same time.")
    ] = 8,
) -> None:
    """Export a project: its folder tree, each document's current version, and manifest.json
    (path, documentId, versionId, sha256, size, contentType per file).

    Every file is checked against its sha256 while it is written.
    """
    job = partial(export.export_project, project_id=project, dest=path, concurrency=concurrency)
    report = _run_transfer(load_settings(), "export", as_email, job)
    _summary(
        report,
        [
            ("exported", f"{report.files:,}"),
            ("failed", f"{len(report.failed):,}"),
            ("manifest", str(path / transfer.MANIFEST)),
        ],
    )


def backup_command(
    path: Annotated[Path, typer.Argument(help="New or empty directory to write into.")],
) -> None:
    """Copy an installation on SQLite and a local folder into PATH, which becomes a data
    folder of its own: the database as of one moment, and every file it names.

    Runs while casefolio serves. Every file is checked against its sha256 while it is
    copied; one missing or damaged in the installation is reported (exit code 1).
    """
    settings = load_settings()
    display = _Display("backup")

    async def work() -> TransferReport:
        try:
            return await anyio.to_thread.run_sync(
                partial(backup.backup, settings, path, on_plan=display.plan, on_file=display.file)
            )
        finally:
            display.close()

    report = run(work)
    _summary(
        report,
        [
            ("files", f"{report.files:,}"),
            ("failed", f"{len(report.failed):,}"),
            ("database", str(path / DATABASE_FILE)),
        ],
    )


def check_command(
    project: Annotated[
        int | None, id_option("--project", help="Check only this project's files.")
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=32, help="Files read at the same time.")
    ] = 4,
) -> None:
    """Read every stored file back (the current, older and trashed versions' alike) and
    compare it with the SHA-256 and size recorded when it was filed.

    Changes nothing. A missing or damaged file is printed with the versions that need it
    (exit code 1): recover those from a backup.
    """
    settings = load_settings()
    display = _Display("check")

    async def work() -> TransferReport:
        async with open_stores(settings) as (db, blobs):
            try:
                return await check.check_blobs(
                    db,
                    blobs,
                    project_id=project,
                    concurrency=concurrency,
                    on_plan=display.plan,
                    on_file=display.file,
                )
            finally:
                display.close()

    report = run(work)
    _summary(
        report,
        [
            ("sound", f"{report.files:,}"),
            ("missing, damaged or unreadable", f"{len(report.failed):,}"),
        ],
    )
