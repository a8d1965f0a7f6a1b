"""PostgreSQL connections the server dropped (restart, failover, idle timeout).

casefolio does not ping a connection at every checkout (a round trip per request); a dropped
one fails its first statement instead. That request answers 503 with Retry-After, and the
next one gets a fresh connection. Always runs on PostgreSQL, on a database of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.db import migrate
from tests.conftest import PG_ADMIN_URL, _admin_execute
from tests.factories import make_actor, switch_api

DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_settings(tmp_path: Path) -> Iterator[Settings]:
    admin = Settings(database_url=PG_ADMIN_URL or DEFAULT_PG_ADMIN_URL).effective_database_url
    name = f"casefolio_conn_{uuid.uuid4().hex[:10]}"
    _admin_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        settings = Settings(data_dir=tmp_path, database_url=admin.rsplit("/", 1)[0] + f"/{name}")
        migrate.upgrade(settings)
        yield settings
    finally:
        _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _drop_connections(settings: Settings) -> int:
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


@pytest.fixture
async def app(pg_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(pg_settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_a_dropped_connection_answers_503_once_then_the_api_recovers(
    app: FastAPI, pg_settings: Settings
) -> None:
    await switch_api(app.state.casefolio.db, on=True)
    headers = (await make_actor(app.state.casefolio.db, operator=True)).headers
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as client:
        created = await client.post("/projects", json={"name": "Doe v Roe"}, headers=headers)
        assert created.status_code == 201
        project = created.json()["id"]
        assert (await client.get(f"/projects/{project}", headers=headers)).status_code == 200

        assert await _drop_connections(pg_settings) >= 1  # the pooled connections are dead
        lost = await client.get(f"/projects/{project}", headers=headers)
        assert lost.status_code == 503, lost.text
        assert lost.headers["retry-after"] == "1"
        assert "connection to the database was lost" in lost.json()["detail"]

        # Every connection pooled before the failure is replaced: no second 503.
        for _ in range(3):
            again = await client.get(f"/projects/{project}", headers=headers)
            assert again.status_code == 200, again.text
            assert again.json()["name"] == "Doe v Roe"


async def test_reads_run_without_a_transaction_and_writes_within_one(app: FastAPI) -> None:
    """Readers skip BEGIN/COMMIT (READ COMMITTED gives each statement its own snapshot
    anyway); now() is the transaction's start, so it tells the two apart."""
    db = app.state.casefolio.db
    async with db.read() as session:
        first = await session.scalar(text("SELECT now()"))
        await anyio.sleep(0.02)
        second = await session.scalar(text("SELECT now()"))
    assert first != second  # each statement its own transaction
    async with db.write() as session:
        first = await session.scalar(text("SELECT now()"))
        await anyio.sleep(0.02)
        second = await session.scalar(text("SELECT now()"))
    assert first == second  # one transaction


async def test_concurrent_requests_reuse_pooled_connections(app: FastAPI) -> None:
    """Past the pool, each checkout opens a connection and each return closes it again;
    16 requests at once, three times over, must open 16 connections in all."""
    db = app.state.casefolio.db
    opened = 0

    def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    async def hold(started: list[None], all_in: anyio.Event, release: anyio.Event) -> None:
        async with db.read() as session:
            await session.execute(text("SELECT 1"))
            started.append(None)
            if len(started) == 16:
                all_in.set()
            await release.wait()

    event.listen(db.engine.sync_engine, "connect", count)
    try:
        for _ in range(3):
            started: list[None] = []
            all_in, release = anyio.Event(), anyio.Event()
            async with anyio.create_task_group() as tasks:
                for _ in range(16):
                    tasks.start_soon(hold, started, all_in, release)
                await all_in.wait()
                release.set()
    finally:
        event.remove(db.engine.sync_engine, "connect", count)
    assert opened == 16
