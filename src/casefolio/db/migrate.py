"""Apply Alembic migrations from code, for `casefolio serve`, `casefolio migrate` and the tests."""

from __future__ import annotations

import asyncio
import fcntl
import os
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import make_url, pool, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from casefolio.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"

#: The PostgreSQL advisory lock every migrating process takes (any fixed 64-bit number).
ADVISORY_LOCK = zlib.crc32(b"casefolio.migrate")


def alembic_config(settings: Settings) -> Config:
    """Given settings, return an Alembic config pointing at our migrations and database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["url"] = settings.effective_database_url
    return config


class UnknownSchema(Exception):
    """The database carries a schema revision this casefolio does not know: a newer
    casefolio migrated it."""


class ServersRunning(Exception):
    """The database needs migrating while a casefolio server or worker uses the
    installation: a migration would change the schema under it."""


#: In the data folder. Each running `casefolio serve` and `casefolio worker` holds a shared
#: lock on it; a migration must take it exclusively, so it never runs under one of them
#: (their writes would miss what the new schema expects: the change feed's numbering, say).
SERVING_LOCK = "casefolio.serving.lock"


def _serving_lock(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return os.open(settings.data_dir / SERVING_LOCK, os.O_RDWR | os.O_CREAT, 0o600)


@contextmanager
def serving(settings: Settings) -> Iterator[None]:
    """Hold the installation's serving lock (shared with other servers) while the block
    runs: a migration by another casefolio command is refused meanwhile. Call after
    `upgrade`, which needs the lock exclusively."""
    fd = _serving_lock(settings)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def upgrade(settings: Settings) -> None:
    """Bring the database schema to the newest revision (blocking; env.py runs its own loop).
    While a server or worker runs on the installation (`serving`), only a database with
    nothing to migrate passes; one that needs migrating is ServersRunning."""
    fd = _serving_lock(settings)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Held: shared by servers or workers, or exclusively by another command that
            # migrates. A shared hold comes as soon as no migration runs, servers or not
            # (waiting for an exclusive one could wait as long as a server runs).
            fcntl.flock(fd, fcntl.LOCK_SH)
            if _up_to_date(settings):
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else holds it now
            except BlockingIOError:
                raise ServersRunning(
                    f"A casefolio server or worker is running on the installation in "
                    f"{settings.data_dir.absolute()}, and its database needs migrating: stop "
                    "it, then run `casefolio migrate` (or start the new `casefolio serve`, "
                    "which migrates first)."
                ) from None
        _upgrade(settings)
    finally:
        os.close(fd)


def _up_to_date(settings: Settings) -> bool:
    """Whether the database's schema is the newest this casefolio knows."""
    return (
        current_revision(settings)
        in ScriptDirectory.from_config(alembic_config(settings)).get_heads()
    )


def current_revision(settings: Settings) -> str | None:
    """The database's schema revision (None: no schema yet). Blocking, as `upgrade` is."""
    url = settings.effective_database_url
    if url.startswith("sqlite") and not Path(make_url(url).database or "").is_file():
        return None  # not created yet (opening it would create it, or fail on its folder)

    async def current() -> str | None:
        engine = create_async_engine(settings.effective_database_url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: MigrationContext.configure(c).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(current())


def revisions_between(settings: Settings, older: str | None, newer: str | None) -> int:
    """How many migrations lead from revision `older` (None: none) to `newer`."""
    if newer is None or older == newer:
        return 0
    script = ScriptDirectory.from_config(alembic_config(settings))
    return sum(1 for _ in script.iterate_revisions(newer, older))


def _upgrade(settings: Settings) -> None:
    try:
        command.upgrade(alembic_config(settings), "head")
    except CommandError as exc:
        if "Can't locate revision" not in str(exc):
            raise
        raise UnknownSchema(
            f"The database's schema is of a newer casefolio than this one ({exc}): run that "
            "casefolio, or go back to a backup made before it migrated the database."
        ) from exc


async def upgrade_async(settings: Settings) -> None:
    """Run `upgrade` in a worker thread, since Alembic's env.py starts an event loop of its own."""
    await anyio.to_thread.run_sync(upgrade, settings)


def lock_file(url: str) -> Path | None:
    """The file a migration of this SQLite database locks, or None (PostgreSQL, in-memory)."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None  # private to one process: nobody to wait for
    return Path(f"{database}.migrate-lock")


@asynccontextmanager
async def exclusive(connection: AsyncConnection, url: str) -> AsyncIterator[None]:
    """Hold the database's migration lock (env.py takes it): one process migrates at a time.

    Two commands started at once on a fresh database (`serve` and `init`, `migrate` twice)
    would otherwise both see no schema, both create it, and the loser would fail on
    "table ... already exists". Under the lock the second waits, then reads the revision the
    first wrote and finds nothing left to do.
    """
    if url.startswith("postgresql"):
        # Session-level: it outlives the commits of the migration and ends with the
        # connection, so a killed migrator never leaves it held.
        await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK})
        await connection.commit()
        try:
            yield
        finally:
            await connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK}
            )
            await connection.commit()
        return
    path = lock_file(url)
    if path is None:
        yield
        return
    # A lock file beside the database: the kernel releases a flock when its holder exits,
    # however it exits. The file stays (removing it would race a process about to lock it).
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # Blocking is fine: env.py runs this on an event loop of its own with nothing else.
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
