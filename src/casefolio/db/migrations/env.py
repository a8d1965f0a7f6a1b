"""Alembic environment: casefolio hands the URL in; nothing comes from alembic.ini or os.environ."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import event, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from casefolio.db.engine import take_sqlite_transactions
from casefolio.db.migrate import exclusive
from casefolio.db.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # Batch mode rebuilds tables on SQLite and is a plain ALTER on PostgreSQL.
        render_as_batch=True,
        compare_type=True,
        # Every pending migration in one transaction, SQLite's too (its DDL is
        # transactional; Alembic assumes not): an upgrade interrupted halfway (Ctrl-C, a
        # kill, a full disk) leaves the schema as it was, and running it again completes it.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_in_one_transaction(engine: AsyncEngine) -> None:
    """Make the SQLite driver leave transactions to SQLAlchemy: sqlite3 itself runs DDL
    outside any transaction, each statement committed as it runs."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # A batch rebuild drops the old table; with foreign keys on, that would cascade.
        take_sqlite_transactions(dbapi_connection, "foreign_keys=OFF", "journal_mode=WAL")

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    if url.startswith("sqlite"):
        _sqlite_in_one_transaction(engine)
    async with engine.connect() as connection, exclusive(connection, url):
        await connection.run_sync(_run)
    await engine.dispose()


url = context.config.attributes["url"]
if context.is_offline_mode():
    context.configure(url=url, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async(url))
