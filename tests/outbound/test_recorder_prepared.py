"""The recorder's statements run compiled once on the DB-API cursor (fastpath/prepared.py):
they must write exactly what SQLAlchemy's own execution of the same insert writes, and fail
as it fails."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Column, Connection, bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError, InvalidRequestError

from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Change
from casefolio.domain import events
from casefolio.fastpath.prepared import PreparedWrite
from casefolio.outbound import audit, recorder, sealing

_EVENT = events.DocumentCreated(
    project_id=7,
    document_id=11,
    version_id=13,
    folder_id=None,
    details={"title": "Brief «draft»", "fileName": "brief.pdf", "number": 1},
)
_ACTOR = events.Actor("token", user_id=3, token_id=5, client="192.0.2.1")


def _stored(conn: Connection, table: str, key: int) -> dict[str, Any]:
    """A row as the database stores it (text, not through any type's conversion)."""
    row = conn.execute(
        text(
            f"SELECT CAST(at AS TEXT) AS at, CAST(details AS TEXT) AS details FROM {table}"
            " WHERE id = :key"
        ),
        {"key": key},
    ).one()
    return dict(row._mapping)


async def test_recorded_rows_are_stored_as_sqlalchemys_insert_stores_them(db: Database) -> None:
    at = datetime(2026, 12, 6, 3, 4, 5, 678901, tzinfo=UTC)
    columns = {
        "at": at,
        "actor_kind": "token",
        "actor_user_id": 3,
        "actor_token_id": 5,
        "client": "192.0.2.1",
        "action": "document.created",
        "target_type": "document",
        "target_id": 11,
        "project_id": 7,
        "details": {"title": "Brief «draft»", "fileName": "brief.pdf", "number": 1},
    }

    def write(conn: Connection) -> tuple[dict[str, Any], dict[str, Any]]:
        prepared = PreparedWrite(recorder._ENTRY_UNSEALED, conn.dialect)
        prepared.run(conn, columns)
        conn.execute(insert(AuditEntry), columns)
        ids = conn.execute(select(AuditEntry.id).order_by(AuditEntry.id)).scalars().all()
        return _stored(conn, "audit_entries", ids[-2]), _stored(conn, "audit_entries", ids[-1])

    async with db.write() as session:
        conn = await session.connection()
        through_prepared, through_sqlalchemy = await conn.run_sync(write)
        await session.rollback()
    assert through_prepared == through_sqlalchemy


async def test_an_upload_event_is_recorded_chained_and_numbered(db: Database) -> None:
    async with db.write() as session:
        events.current_actor.set(_ACTOR)
        events.emit(session, _EVENT)
    await sealing.number_pending(db)
    async with db.write() as session:
        await sealing.seal(session)
    async with db.read() as session:
        entry = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()))).first()
        change = (await session.scalars(select(Change).order_by(Change.id.desc()))).first()
        verdict = await audit.verify(session)
    assert entry is not None and change is not None
    assert (entry.actor_kind, entry.actor_user_id, entry.actor_token_id, entry.client) == (
        "token",
        3,
        5,
        "192.0.2.1",
    )
    assert (entry.action, entry.target_id, entry.project_id) == ("document.created", 11, 7)
    assert entry.details == _EVENT.details and change.details == _EVENT.details
    assert entry.at.tzinfo is not None and entry.at == change.at
    assert (change.type, change.document_id, change.version_id) == ("document.created", 11, 13)
    assert change.seq is not None and change.seq >= 1
    assert verdict.first_bad_id is None and verdict.checked >= 1, verdict


async def test_a_missing_value_and_a_refused_row_fail_as_sqlalchemy_fails(db: Database) -> None:
    def missing(conn: Connection) -> None:
        PreparedWrite(recorder._ENTRY_UNSEALED, conn.dialect).run(conn, {"at": datetime.now(UTC)})

    def duplicate(conn: Connection) -> None:
        row = {
            "id": 10**9,
            "seq": 10**9,
            "at": datetime.now(UTC),
            "type": "document.created",
            "project_id": 1,
            "document_id": 1,
            "version_id": 1,
            "folder_id": None,
            "subject_id": None,
            "user_id": None,
            "details": {},
        }
        conn.execute(insert(Change), row)
        # The same feed number again: the unique index refuses it.
        table_columns: dict[str, Column[Any]] = dict(Change.__table__.c)  # type: ignore[attr-defined]
        statement = insert(Change).values(
            {name: bindparam(name, type_=table_columns[name].type) for name in row}
        )
        PreparedWrite(statement, conn.dialect).run(conn, row | {"id": 10**9 + 1})

    async with db.write() as session:
        conn = await session.connection()
        with pytest.raises(InvalidRequestError, match="'actor_kind'"):
            await conn.run_sync(missing)
        await session.rollback()
    async with db.write() as session:
        conn = await session.connection()
        with pytest.raises(IntegrityError):
            await conn.run_sync(duplicate)
        await session.rollback()
