"""Only the violations a concurrent change causes are a 409; any other is a bug (a 500)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from casefolio.db.conflicts import is_concurrent_change
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
