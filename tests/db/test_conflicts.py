"""Only the violations a concurrent change causes are a 409; any other is a bug (a 500)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from casefolio.db.conflicts import is_concurrent_change, is_write_conflict
from casefolio.db.engine import Database
from casefolio.db.models import TeamMember, User


async def _violation(db: Database, statement: Any, rows: list[dict[str, Any]]) -> IntegrityError:
    with pytest.raises(IntegrityError) as caught:
        async with db.writer() as session:
            for row in rows:
                await session.execute(statement, row)
            await session.commit()
    return caught.value


async def test_a_duplicate_key_is_a_concurrent_change(db: Database) -> None:
    ann = {"email": "ann@example.com", "email_key": "ann@example.com", "name": "Ann"}
    exc = await _violation(db, insert(User), [ann, ann])
    assert is_concurrent_change(exc)


async def test_a_row_pointing_at_a_vanished_row_is_a_concurrent_change(db: Database) -> None:
    exc = await _violation(db, insert(TeamMember), [{"team_id": 10**9, "user_id": 10**9}])
    assert is_concurrent_change(exc)


async def test_a_missing_required_value_is_not_a_concurrent_change(db: Database) -> None:
    exc = await _violation(db, insert(User), [{"email": "b@example.com", "email_key": None}])
    assert not is_concurrent_change(exc)


async def test_a_deadlock_is_a_write_conflict_and_a_refused_insert_is_not(
    db: Database, is_postgres: bool
) -> None:
    """Two transactions that each lock a row the other then wants: PostgreSQL ends one with
    deadlock_detected, which means "retry" (409), not a defect (500)."""
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: they cannot deadlock")
    async with db.writer() as setup:
        for email in ("a@example.com", "b@example.com"):
            await setup.execute(insert(User).values(email=email, email_key=email, name="X"))
        await setup.commit()
    lock = text("SELECT id FROM users WHERE email_key = :key FOR UPDATE")
    first, second = db.writer(), db.writer()
    try:
        await first.execute(lock, {"key": "a@example.com"})
        await second.execute(lock, {"key": "b@example.com"})
        outcomes = await asyncio.gather(
            first.execute(lock, {"key": "b@example.com"}),
            second.execute(lock, {"key": "a@example.com"}),
            return_exceptions=True,
        )
    finally:
        await first.close()
        await second.close()
    [ended] = [o for o in outcomes if isinstance(o, BaseException)]
    assert isinstance(ended, DBAPIError) and is_write_conflict(ended), repr(ended)
    duplicate = await _violation(
        db, insert(User), [{"email": "a@example.com", "email_key": "a@example.com", "name": "A"}]
    )
    assert not is_write_conflict(duplicate)
