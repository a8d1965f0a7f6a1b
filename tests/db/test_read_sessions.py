"""Read sessions cannot write: on PostgreSQL they run without a transaction (db/engine.py),
where a write would commit statement by statement instead of all or nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, update

from casefolio.db.engine import Database
from casefolio.db.models import User

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


async def test_a_read_connection_goes_back_to_the_pool_however_its_block_ends(
    db: Database,
) -> None:
    pool = db.engine.sync_engine.pool
    before = pool.checkedout()  # type: ignore[attr-defined]
    async with db.read_connection() as connection:
        assert pool.checkedout() == before + 1  # type: ignore[attr-defined]
        assert await connection.scalar(select(func.count()).select_from(User)) is not None
    assert pool.checkedout() == before  # type: ignore[attr-defined]

    with pytest.raises(LookupError):
        async with db.read_connection() as connection:
            await connection.execute(select(User.id))
            raise LookupError("the read failed")
    assert pool.checkedout() == before  # type: ignore[attr-defined]
    # And the pooled connection reads again: nothing was left open on it.
    async with db.read_connection() as connection:
        assert await connection.scalar(select(func.count()).select_from(User)) is not None
