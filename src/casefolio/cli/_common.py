"""What every command shares: settings, a transaction, and error output."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.config import Settings
from casefolio.db import migrate
from casefolio.db.engine import Database, DatabaseUnavailable
from casefolio.domain.errors import DomainError

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        err_console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


@asynccontextmanager
async def transaction(settings: Settings) -> AsyncIterator[AsyncSession]:
    """Migrate if needed, then yield a session whose transaction commits on success."""
    await migrate.upgrade_async(settings)
    db = Database.open(settings)
    try:
        async with db.write() as session:
            yield session
    finally:
        await db.close()


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run async command work; domain errors, and a database that cannot be reached or did
    not answer in time, become a red line and exit code 1."""
    try:
        return anyio.run(work)
    except DomainError as exc:
        err_console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    except DatabaseUnavailable as exc:
        err_console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
