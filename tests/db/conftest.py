"""A PostgreSQL database of a test's own, whichever the suite (only the PostgreSQL suite runs
such tests when `make test` runs the two side by side), for what only PostgreSQL has."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from casefolio.config import Settings
from casefolio.db import migrate
from casefolio.db.engine import Database
from tests.conftest import PG_ADMIN_URL, _admin_execute

DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a freshly migrated PostgreSQL database, dropped after the test."""
    admin = Settings(database_url=PG_ADMIN_URL or DEFAULT_PG_ADMIN_URL).effective_database_url
    name = f"casefolio_own_{uuid.uuid4().hex[:10]}"
    _admin_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        settings = Settings(data_dir=tmp_path, database_url=admin.rsplit("/", 1)[0] + f"/{name}")
        migrate.upgrade(settings)
        yield settings
    finally:
        _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def drop_connections(settings: Settings) -> int:
    """Terminate every server process serving this database, as a restart would."""
    url = settings.effective_database_url
    name = url.rsplit("/", 1)[1]
    admin = create_async_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            dropped = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            return len(dropped.all())
    finally:
        await admin.dispose()


async def hold_at_once(db: Database, count: int) -> None:
    """Hold `count` read sessions at once, each having run a statement (so each holds a
    connection), and then close them all: the pool keeps up to `count` connections."""
    all_in, holding = anyio.Event(), 0

    async def hold() -> None:
        nonlocal holding
        async with db.read() as session:
            await session.execute(text("SELECT 1"))
            holding += 1
            if holding == count:
                all_in.set()
            await all_in.wait()

    async with anyio.create_task_group() as tasks:
        for _ in range(count):
            tasks.start_soon(hold)
