"""A database that refuses one row: a trigger that stands in for a refusal nobody foresaw,
for tests of the background steps that must not let one such row stop the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from casefolio.db.engine import Database


def _create(dialect: str, table: str, when: str, event: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER refuse_one BEFORE {event} ON {table} WHEN {when} "
            "BEGIN SELECT RAISE(ABORT, 'this database refuses it'); END"
        ]
    row = "OLD" if event == "DELETE" else "NEW"
    return [
        "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN "
        f"IF {when} THEN RAISE EXCEPTION 'this database refuses it'; END IF; "
        f"RETURN {row}; END $$ LANGUAGE plpgsql",
        f"CREATE TRIGGER refuse_one BEFORE {event} ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION refuse_one()",
    ]


def _drop(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return ["DROP TRIGGER refuse_one"]
    return [f"DROP TRIGGER refuse_one ON {table}", "DROP FUNCTION refuse_one()"]


async def _run_all(db: Database, statements: list[str]) -> None:
    async with db.write() as session:
        for statement in statements:
            await session.execute(text(statement))


@asynccontextmanager
async def refusing(
    db: Database, table: str, when: str, event: str = "INSERT"
) -> AsyncIterator[None]:
    """While the block runs, the database refuses `event` (INSERT, UPDATE, UPDATE OF a
    column, DELETE) of a row of `table` for which `when`, an SQL condition over OLD and NEW,
    holds."""
    dialect = db.engine.dialect.name
    await _run_all(db, _create(dialect, table, when, event))
    try:
        yield
    finally:
        await _run_all(db, _drop(dialect, table))
