"""Read sessions and the statement reader cannot write: on PostgreSQL they run without a
transaction (db/engine.py), where a write would commit statement by statement instead of
all or nothing."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from sqlalchemy import bindparam, func, insert, make_url, select, text, update
from sqlalchemy.exc import DBAPIError

from casefolio.db.engine import Database
from casefolio.db.models import User
from casefolio.fastpath.statements import StatementReader

REFUSED = "a read session cannot write"


async def _user_count(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_a_read_session_refuses_orm_writes(db: Database) -> None:
    before = await _user_count(db)
    async with db.read() as session:
        session.add(User(email="reader@example.com", email_key="reader@example.com", name="Reader"))
        with pytest.raises(RuntimeError, match=REFUSED):
            await session.flush()
    assert await _user_count(db) == before


async def test_a_read_session_refuses_write_statements(db: Database) -> None:
    before = await _user_count(db)
    async with db.read() as session:
        with pytest.raises(RuntimeError, match=REFUSED):
            await session.execute(
                insert(User).values(
                    email="core@example.com", email_key="core@example.com", name="Core"
                )
            )
        with pytest.raises(RuntimeError, match=REFUSED):
            await session.execute(update(User).values(name="Renamed"))
        # Reading still works in the same session.
        assert await session.scalar(select(func.count()).select_from(User)) == before
    assert await _user_count(db) == before


async def test_a_write_session_writes(db: Database) -> None:
    before = await _user_count(db)
    async with db.write() as session:
        session.add(User(email="writer@example.com", email_key="writer@example.com", name="Writer"))
    assert await _user_count(db) == before + 1


async def test_a_read_session_goes_back_to_the_pool_however_its_block_ends(db: Database) -> None:
    pool = db.engine.sync_engine.pool
    before = pool.checkedout()  # type: ignore[attr-defined]
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(User)) is not None
        assert pool.checkedout() == before + 1  # type: ignore[attr-defined]
    assert pool.checkedout() == before  # type: ignore[attr-defined]

    with pytest.raises(LookupError):
        async with db.read() as session:
            await session.execute(select(User.id))
            raise LookupError("the read failed")
    assert pool.checkedout() == before  # type: ignore[attr-defined]
    # And the pooled connection reads again: nothing was left open on it.
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(User)) is not None


async def test_the_statement_reader_reads_and_refuses_writes(
    db: Database, statements: StatementReader
) -> None:
    before = await _user_count(db)
    rows = await statements.execute(select(func.count()).select_from(User), {})
    assert [tuple(row) for row in rows] == [(before,)]
    with pytest.raises(RuntimeError, match=REFUSED):
        await statements.execute(
            insert(User).values(email="s@example.com", email_key="s@example.com", name="S"), {}
        )
    with pytest.raises(RuntimeError, match=REFUSED):
        await statements.execute(update(User).values(name="Renamed"), {})
    assert await _user_count(db) == before


async def test_a_failed_statement_read_leaves_no_connection_behind(
    db: Database, statements: StatementReader
) -> None:
    # PostgreSQL's reader borrows from the shared pool; SQLite's keeps one connection of its
    # own (db/engine.py), drops it when a read fails and opens another for the next read.
    pool = statements.engine.pool
    counted = hasattr(pool, "checkedout")
    before = pool.checkedout() if counted else 0  # type: ignore[attr-defined]
    with pytest.raises(DBAPIError):
        await statements.execute(text("SELECT no_such_column FROM users"), {})
    if counted:
        assert pool.checkedout() == before  # type: ignore[attr-defined]
    else:
        assert statements._held is None
    # And it reads again: nothing was left open on the connection it reads with.
    rows = await statements.execute(select(User.id).where(User.id == bindparam("id")), {"id": 0})
    assert rows == []
    if counted:
        assert pool.checkedout() == before  # type: ignore[attr-defined]


async def test_the_statement_reader_sees_each_commit_and_keeps_no_snapshot(
    db: Database, statements: StatementReader
) -> None:
    count = select(func.count()).select_from(User)
    before = (await statements.execute(count, {}))[0][0]
    held = statements._held
    async with db.write() as session:
        await session.execute(
            insert(User).values(email="new@example.com", email_key="new@example.com", name="New")
        )
    assert (await statements.execute(count, {}))[0][0] == before + 1
    if db.engine.dialect.name == "sqlite":
        # One connection for every read, outside any transaction between them: an open one
        # would pin its snapshot and keep the log from being checkpointed.
        assert held is not None and statements._held is held
        assert not held.connection.driver_connection.in_transaction  # type: ignore[union-attr]
        # Nor a read lock: the whole log can be checkpointed and truncated.
        path = make_url(db.engine.url).database
        with closing(sqlite3.connect(str(path), isolation_level=None)) as other:
            busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
