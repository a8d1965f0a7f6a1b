"""Fixtures: a real database per run (SQLite, or PostgreSQL when CASEFOLIO_TEST_DATABASE_URL is
set), the real ASGI app over httpx, and actors with real tokens."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.db import migrate
from casefolio.db.engine import Database
from casefolio.db.models import Base
from casefolio.fastpath.statements import StatementReader
from tests import services
from tests.api.v3.conformance import v3_response_hook
from tests.factories import Actor, make_actor, switch_api

# The one place outside config.py that reads the environment: which database to test on,
# and whether this is CI, where a missing service fails the run instead of skipping.
PG_ADMIN_URL = os.environ.get("CASEFOLIO_TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI") == "true"
# CASEFOLIO_TEST_FAST_READS=false runs the whole suite with the fast path off (fastpath/).
FAST_READS = os.environ.get("CASEFOLIO_TEST_FAST_READS", "true") != "false"
# CASEFOLIO_TEST_SPLIT=true (`make test`, which runs the two suites side by side): a test that
# does not depend on the suite's database runs in one suite only (`_other_suites`).
SPLIT = os.environ.get("CASEFOLIO_TEST_SPLIT") == "true"
_SERVICE_CHECKS = services.checks(PG_ADMIN_URL)

# Fixtures of the database the suite runs on: a test using one runs in both suites.
SUITE_DATABASE_FIXTURES = frozenset({"database_url", "fresh_database_url"})
# Fixtures of a PostgreSQL database of a test's own, whichever the suite.
OWN_POSTGRES_FIXTURES = frozenset({"pg_settings", "pg_url"})


def _other_suites(item: pytest.Item) -> bool:
    """Whether the other suite of a split run runs this test: one that uses no database of the
    suite's runs on SQLite, one with a PostgreSQL database of its own on PostgreSQL."""
    fixtures = set(getattr(item, "fixturenames", ()))
    if fixtures & SUITE_DATABASE_FIXTURES:
        return False
    runs_on_postgres = bool(fixtures & OWN_POSTGRES_FIXTURES)
    return runs_on_postgres != bool(PG_ADMIN_URL)


def pytest_report_header() -> str | None:
    if not SPLIT:
        return None
    suite = "PostgreSQL" if PG_ADMIN_URL else "SQLite"
    return (
        f"CASEFOLIO_TEST_SPLIT=true: the {suite} suite leaves out the tests that do not use its "
        "database and the other suite runs (see 'deselected')"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what a test needs from the fixtures it uses; on PostgreSQL, every test. In a split
    run, leave out what the other suite runs."""
    if SPLIT:
        elsewhere = [item for item in items if _other_suites(item)]
        if elsewhere:
            config.hook.pytest_deselected(items=elsewhere)
            items[:] = [item for item in items if not _other_suites(item)]
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            for service in services.FIXTURE_SERVICES.get(fixture, ()):
                item.add_marker(service)
        if PG_ADMIN_URL:
            item.add_marker("postgres")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for name in sorted({m.name for m in item.iter_markers()} & _SERVICE_CHECKS.keys()):
        if (missing := _SERVICE_CHECKS[name]()) is not None:
            if IN_CI:
                pytest.fail(f"{missing} (CI=true: every service must be up)", pytrace=False)
            pytest.skip(missing)


def _admin_execute(url: str, statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(statement))
        await engine.dispose()

    anyio.run(run)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated database for this test run."""
    if not PG_ADMIN_URL:
        path = tmp_path_factory.mktemp("db") / "casefolio.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate.upgrade(Settings(data_dir=path.parent, database_url=url))
        yield url
        return
    admin = Settings(database_url=PG_ADMIN_URL).effective_database_url
    name = f"casefolio_test_{uuid.uuid4().hex[:10]}"
    _admin_execute(admin, f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate.upgrade(Settings(database_url=url))
        yield url
    finally:
        _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


# As TRUNCATE … RESTART IDENTITY, which makes every table's files anew and was most of a test's
# teardown: each table's rows deleted, children first, and its columns' sequences set back to 1.
_EMPTY_POSTGRES = """DO $$ BEGIN
{deletes}
  PERFORM setval(sequence.oid, 1, false) FROM pg_class sequence
    JOIN pg_depend owner ON owner.objid = sequence.oid AND owner.deptype IN ('a', 'i')
    WHERE sequence.relkind = 'S';
END $$"""


async def _empty_tables(url: str) -> None:
    engine = create_async_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if url.startswith("postgresql"):
            deletes = "\n".join(f"  DELETE FROM {table};" for table in tables)
            await conn.exec_driver_sql(_EMPTY_POSTGRES.format(deletes=deletes))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))
            # As RESTART IDENTITY: the tables with AUTOINCREMENT count on in here.
            await conn.execute(text("DELETE FROM sqlite_sequence"))
    await engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Iterator[Settings]:
    """Settings for one test: its own data folder, the run's database emptied afterwards."""
    # The default durability (FULL): the suite runs the commit path casefolio ships with.
    yield Settings(data_dir=tmp_path / "data", database_url=database_url, fast_reads=FAST_READS)
    anyio.run(_empty_tables, database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def db(app: FastAPI) -> Database:
    database: Database = app.state.casefolio.db
    return database


@pytest.fixture
def statements(db: Database, settings: Settings) -> Iterator[StatementReader]:
    """The fast path's reader of single statements (fastpath/statements.py) on `db`,
    whether or not the app reads through it."""
    reader = StatementReader.for_database(db, settings)
    yield reader
    reader.close()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Any /api/v3 response is checked against OpenProject's schemas (tests/api/v3/conformance.py).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [v3_response_hook()]},
    ) as http:
        yield http


@pytest.fixture
async def operator(db: Database) -> Actor:
    """An operator with a token, on an installation whose integrations API is switched on."""
    await switch_api(db, on=True)
    return await make_actor(db, email="operator@example.com", name="Olivia Operator", operator=True)


@pytest.fixture
async def member(db: Database, operator: Actor) -> Actor:
    """A plain user with a token and no project grants."""
    return await make_actor(db, email="member@example.com", name="Milo Member")
