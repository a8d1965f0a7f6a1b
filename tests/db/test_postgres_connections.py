"""PostgreSQL connections the server dropped (restart, failover, idle timeout).

casefolio does not ping a connection at every checkout (a round trip per request); a dropped
one fails its first statement instead. That request answers 503 with Retry-After, and the
next one gets a fresh connection. Always runs on PostgreSQL, on a database of its own
(tests/db/conftest.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.db.engine import Database
from tests.db.conftest import drop_connections, hold_at_once
from tests.factories import make_actor, switch_api


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

        assert await drop_connections(pg_settings) >= 1  # the pooled connections are dead
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

    event.listen(db.engine.sync_engine, "connect", count)
    try:
        for _ in range(3):
            await hold_at_once(db, 16)
    finally:
        event.remove(db.engine.sync_engine, "connect", count)
    assert opened == 16


async def test_connections_run_without_jit(app: FastAPI) -> None:
    """JIT is off for casefolio's connections, whatever the server's default."""
    db = app.state.casefolio.db
    async with db.read() as session:
        assert (await session.execute(text("SHOW jit"))).scalar_one() == "off"
    async with db.write() as session:
        assert (await session.execute(text("SHOW jit"))).scalar_one() == "off"


async def test_transactions_are_read_committed_whatever_the_database_default(
    pg_settings: Settings,
) -> None:
    """The feed's numbering needs each statement to see what committed before it: a
    database whose default isolation is stricter does not change casefolio's."""
    admin = pg_settings.effective_database_url
    name = admin.rsplit("/", 1)[1]
    server = create_async_engine(
        admin.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
    )
    try:
        async with server.connect() as conn:
            await conn.execute(
                text(
                    f'ALTER DATABASE "{name}"'
                    " SET default_transaction_isolation = 'repeatable read'"
                )
            )
    finally:
        await server.dispose()
    other = create_async_engine(admin)  # any other client of this database
    try:
        async with other.connect() as conn:
            assert await conn.scalar(text("SHOW transaction_isolation")) == "repeatable read"
    finally:
        await other.dispose()
    db = Database.open(pg_settings)
    try:
        async with db.write() as session:
            assert await session.scalar(text("SHOW transaction_isolation")) == "read committed"
        async with db.read() as session:
            assert await session.scalar(text("SHOW transaction_isolation")) == "read committed"
    finally:
        await db.close()
