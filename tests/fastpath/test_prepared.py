"""SELECTs compiled once (fastpath/prepared.py) return what SQLAlchemy's execution returns.

On an SQLite installation of its own in both suites: prepared reads are SQLite's.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, Executable, bindparam, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import InvalidRequestError

from casefolio.config import Settings
from casefolio.db import migrate
from casefolio.db.engine import Database
from casefolio.db.models import (
    AuditEntry,
    Document,
    DocumentVersion,
    Field,
    FieldValue,
    Project,
)
from casefolio.domain import documents
from casefolio.fastpath import sqlite_inline
from casefolio.fastpath.prepared import PreparedWrite, prepare
from casefolio.fastpath.statements import StatementReader
from casefolio.outbound import recorder
from tests.factories import Actor, file_with_fields


@pytest.fixture
async def settings(tmp_path: Path) -> Settings:
    """This module's own SQLite installation, in both suites (the `app`, `db`, `client` and
    `operator` fixtures then run on it)."""
    installation = Settings(data_dir=tmp_path / "data", database_url="")
    await migrate.upgrade_async(installation)
    return installation


@pytest.fixture
async def filed(
    client: httpx.AsyncClient, statements: StatementReader, operator: Actor
) -> tuple[StatementReader, int, int]:
    """One document carrying two field values: the reader, its id and its filer's id."""
    values = {"Custodian": ("text", "J. Smith"), "Privileged": ("boolean", True)}
    return statements, await file_with_fields(client, operator, values), operator.user_id


def _through_sqlalchemy(
    db: StatementReader, statement: Executable, params: dict[str, Any]
) -> list[Any]:
    with db.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(statement, params)]


def _prepared(db: StatementReader, statement: Executable, params: dict[str, Any]) -> list[Any]:
    prepared = prepare(statement, db.engine.dialect)
    assert prepared is not None
    with db.engine.connect() as connection:
        return prepared.run(connection.connection.driver_connection, params)  # type: ignore[arg-type]


async def test_the_document_read_returns_what_sqlalchemy_returns(
    filed: tuple[StatementReader, int, int],
) -> None:
    db, document_id, user_id = filed
    params = {"document_id": document_id, "user_id": user_id}
    rows = _prepared(db, documents.DOCUMENT_READ.single, params)
    assert rows == _through_sqlalchemy(db, documents.DOCUMENT_READ.single, params)
    # Converted as SQLAlchemy converts: aware datetimes, JSON values decoded, ints as ints.
    assert len(rows) == 2
    names = [c.name for c in documents.DOCUMENT_READ.single.selected_columns]
    named = [dict(zip(names, row, strict=True)) for row in rows]
    assert {row["value"] for row in named} == {"J. Smith", True}
    created_at = named[0]["document_created_at"]
    assert isinstance(created_at, datetime) and created_at.tzinfo is not None


async def test_bind_values_are_converted_and_the_statements_own_values_sent(
    filed: tuple[StatementReader, int, int],
) -> None:
    db, document_id, _ = filed
    # A datetime parameter goes through its column type's converter (UTCDateTime: stored
    # as text, so unconverted the equal instant would compare as later); the
    # literal title and the limit are values the statement carries itself.
    statement = (
        select(Document.id, Document.title, Project.name)
        .join(Project, Project.id == Document.project_id)
        .where(Document.updated_at >= bindparam("since"), Document.title == "Claim")
        .limit(5)
    )
    [(updated_at,)] = _through_sqlalchemy(db, select(Document.updated_at), {})
    cases = [(updated_at - timedelta(hours=1), 1), (updated_at, 1), (datetime.now(UTC), 0)]
    for since, expected in cases:
        rows = _prepared(db, statement, {"since": since})
        assert rows == _through_sqlalchemy(db, statement, {"since": since})
        assert [row[0] for row in rows] == [document_id] * expected
    # A parameter left out is an error, as in SQLAlchemy, not a NULL that matches nothing.
    with pytest.raises(InvalidRequestError, match="'since'"):
        _prepared(db, statement, {})


def test_only_plain_selects_are_prepared(tmp_path: Path) -> None:
    reader = StatementReader.for_sqlite(str(tmp_path / "unused.db"), lock_wait=0)
    dialect = reader.engine.dialect
    try:
        assert prepare(select(Field.id, Field.choices, Field.required), dialect) is not None
        # The SQL of an IN list depends on the list: SQLAlchemy renders it per execution.
        expanding = select(Field.id).where(Field.id.in_(bindparam("ids", expanding=True)))
        assert prepare(expanding, dialect) is None
        computed = bindparam("at", callable_=lambda: datetime.now(UTC))
        assert prepare(select(Field.id).where(Field.created_at < computed), dialect) is None
        assert prepare(text("SELECT 1"), dialect) is None
        assert prepare(insert(FieldValue).values(value=1), dialect) is None
        # Prepared reads run on sqlite3 connections only.
        assert prepare(select(DocumentVersion.id), postgresql.dialect()) is None
    finally:
        reader.close()


async def test_a_prepared_write_runs_inline_once_its_transaction_holds_the_lock(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a write transaction that has taken SQLite's write lock, a PreparedWrite (the
    recorder's, at commit) runs at once on the connection; as a transaction's first
    statement it goes through the driver, which begins the transaction and takes the lock."""
    through_driver: list[str] = []
    real_execute = sqlite_inline.Cursor.execute

    async def counted(self: sqlite_inline.Cursor, sql: str, parameters: Any = ()) -> Any:
        if not sql.startswith("PRAGMA"):  # a new connection's own set-up
            through_driver.append(sql)
        return await real_execute(self, sql, parameters)

    monkeypatch.setattr(sqlite_inline.Cursor, "execute", counted)
    entry = {
        "at": datetime(2026, 12, 6, 7, 0, tzinfo=UTC),
        "actor_kind": "cli",
        "actor_user_id": None,
        "actor_token_id": None,
        "client": None,
        "action": "document.created",
        "target_type": "document",
        "target_id": 1,
        "project_id": 1,
        "details": {},
    }
    path = db.engine.url.database
    assert path
    other = sqlite3.connect(path, timeout=0)
    try:
        async with db.write() as session:
            conn = await session.connection()

            def write(c: Connection) -> list[Any]:
                PreparedWrite(recorder._ENTRY_UNSEALED, c.dialect).run(c, entry)
                return list(c.execute(select(AuditEntry.id)).scalars())

            first = await conn.run_sync(write)
            assert len(through_driver) == 2  # the insert began the transaction, then the read
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")  # the write lock is held
            second = await conn.run_sync(write)
            assert len(through_driver) == 3  # the insert ran inline, the read did not
            assert len(first) == 1 and len(second) == 2  # each sees its own transaction's rows
        committed = other.execute("SELECT count(*) FROM audit_entries").fetchone()[0]
        assert committed == 2
    finally:
        other.close()
