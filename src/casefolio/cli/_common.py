"""What every command shares: finding the installation, a transaction, and error output."""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import anyio
import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.config import Settings
from casefolio.db import migrate
from casefolio.db.engine import Database, DatabaseUnavailable
from casefolio.db.models import MAX_ID
from casefolio.domain.errors import DomainError
from casefolio.installation import DATA_FOLDER, ConfigurationError, Installation, locate
from casefolio.storage.base import BlobStoreUnavailable

#: `--as EMAIL`, for the commands that act in a user's name (domain/transfer.py's
#: `acting_principal`).
AsOption = Annotated[
    str | None,
    typer.Option("--as", help="E-mail of the user to act as (default: the first operator)."),
]


def id_option(*names: str, help: str) -> Any:
    """An option naming a row by its id: 1 to the largest id a column holds, so that a
    larger number is the parser's usage error, not the database's overflow."""
    return typer.Option(*names, min=1, max=MAX_ID, help=help)


T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one red line on stderr and end the command."""
    err_console.print(f"[red]{escape(printable(message))}[/red]", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def printable(value: str) -> str:
    """`value` as it can be printed: a byte of a name that is not UTF-8 (which Python reads
    as a lone surrogate) becomes U+FFFD, which any UTF-8 terminal or file takes."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def load_installation(*, create: bool = False) -> Installation:
    """Find the installation (installation.locate). Only commands that may `create` one go on
    when it does not exist yet, and they say where they create it."""
    try:
        found = locate()
    except ConfigurationError as exc:
        fail(f"Configuration error: {exc}", code=2)
    settings = found.settings
    database = settings.sqlite_file
    if database is None or database.exists():
        return found
    if not create:
        fail(
            f"There is no casefolio installation in {settings.data_dir.absolute()} (found by "
            f"{found.found_by}). Create one with `casefolio init`, or point "
            "CASEFOLIO_DATA_DIR at yours."
        )
    unfinished = database.with_name(f".{database.name}.part")
    if unfinished.exists():
        # `casefolio backup` names the database copy last: this is a backup it never finished.
        fail(
            f"{settings.data_dir.absolute()} holds an unfinished backup ({unfinished.name}), not "
            "an installation: delete that folder and run the backup again, or point "
            "CASEFOLIO_DATA_DIR elsewhere."
        )
    legacy = Path(DATA_FOLDER) / database.name
    if not found.found_by.startswith("CASEFOLIO_") and legacy.exists():
        # Older casefolio kept its data in ./casefolio-data; do not start an empty one
        # elsewhere while that one sits here.
        fail(
            f"{legacy.absolute().parent} holds a casefolio installation, but this command "
            f"would create a new one in {settings.data_dir.absolute()}. Run it with "
            f"CASEFOLIO_DATA_DIR={legacy.absolute().parent} (or move that folder there)."
        )
    how = found.found_by
    if how == "the per-user default":
        how += "; CASEFOLIO_DATA_DIR or a casefolio.toml picks another"
    err_console.print(
        f"Creating a new casefolio installation in {settings.data_dir.absolute()} ({how}).",
        soft_wrap=True,
        highlight=False,
    )
    return found


def load_settings(*, create: bool = False) -> Settings:
    return load_installation(create=create).settings


def failure(exc: BaseException) -> str | None:
    """Given an error from running a command, return its one-line description, or None for a
    bug (which keeps its traceback)."""
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, DatabaseUnavailable):
        return exc.detail
    if isinstance(exc, migrate.UnknownSchema | migrate.ServersRunning):
        return str(exc)
    if isinstance(exc, sqlite3.Error):  # from the commands that use sqlite3 itself (backup)
        return f"Database error: {exc}"
    if isinstance(exc, BlobStoreUnavailable):
        return f"Cannot reach the blob store: {exc}"
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return f"Cannot reach the database: {exc}"
    if isinstance(exc, OSError):
        if exc.filename is not None:
            return f"Cannot use {exc.filename}: {exc.strerror or exc}"
        return str(exc)
    if isinstance(exc, SQLAlchemyError):
        cause = getattr(exc, "orig", None) or exc.__cause__ or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        return f"Database error: {first}"
    return None


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn the failures a person can fix (not bugs) into one red line and exit code 1."""
    try:
        yield
    except Exception as exc:
        inner = _innermost(exc)
        if isinstance(inner, BrokenPipeError):
            # Standard output's reader went away (`| head`): nothing to say, and nowhere to
            # write the rest (nor Python's last flush of it, so that goes nowhere too).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
        message = failure(inner)
        if message is None:
            raise
        fail(message)


def _innermost(exc: BaseException) -> BaseException:
    # anyio wraps errors from task groups; a single one is what matters.
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def upgrade(settings: Settings) -> None:
    """Apply pending migrations (blocking), failures as one red line."""
    with one_line_errors():
        migrate.upgrade(settings)


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


def run_in_transaction(
    work: Callable[[AsyncSession], Awaitable[T]], *, settings: Settings | None = None
) -> T:
    """Run command work in one `transaction` of the installation's database (that of
    `settings`, by default `load_settings()`), with `run`'s one-line errors."""
    found = load_settings() if settings is None else settings

    async def in_transaction() -> T:
        async with transaction(found) as session:
            return await work(session)

    return run(in_transaction)


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run async command work; domain errors, an unreachable or silent database and a data
    folder that cannot be used become a red line and exit code 1."""
    with one_line_errors():
        return anyio.run(work)
    raise AssertionError("unreachable")  # pragma: no cover
