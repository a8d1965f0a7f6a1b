"""Engine and session factories, with the SQLite settings that make it safe under load."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session

from casefolio.config import Settings
from casefolio.fastpath import sqlite_inline
from casefolio.outbound.recorder import RecordingSession

WRITE_OPTION = "casefolio_write"
SQLITE_POOL_SIZE = 32
SQLITE_POOL_OVERFLOW = 64
#: Seconds after which a PostgreSQL connection is replaced at checkout, ahead of the idle
#: timeouts of servers and proxies in between.
PG_POOL_RECYCLE = 1800
#: PostgreSQL connections opened beyond CASEFOLIO_DATABASE_POOL_SIZE during a burst; each is
#: closed again when it comes back, so the pool itself must cover the usual concurrency.
PG_POOL_OVERFLOW = 10


def create_engine(settings: Settings) -> AsyncEngine:
    """Given settings, return an async engine; SQLite gets WAL, foreign keys and statements
    run on the event loop (fastpath/sqlite_inline.py)."""
    url = settings.effective_database_url
    if not url.startswith("sqlite"):
        # No pre-ping: a round trip per checkout is a large share of a document read's CPU.
        # A connection the server dropped fails its first statement instead; SQLAlchemy
        # then replaces every pooled connection older than that failure, and the request
        # answers 503 with Retry-After (api/errors.py).
        # Pool size: past it, every checkout opens a connection and every return closes it.
        # With 10 (and 20 overflow), 16 concurrent GETs on one worker did that all the time;
        # 20 answers more and faster (bench/README.md).
        pg_engine = create_async_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=PG_POOL_OVERFLOW,
            pool_recycle=PG_POOL_RECYCLE,
            # asyncpg's bound on every statement, COMMIT included; without it a connection
            # gone silent (a failover the client never heard of) holds its request, and every
            # read batched with it, until TCP gives up, ~15 minutes later.
            connect_args={
                "command_timeout": settings.database_statement_timeout_seconds,
                # No JIT: it is planned by estimated cost, and a search matching many texts
                # is estimated high (it reads only the first matches), so JIT compiled it
                # for longer than the statement then ran (bench/README.md, search).
                # READ COMMITTED whatever the database's default: the change feed's
                # numbering (outbound/sealing.py) needs each statement to see what committed
                # before it, and readers run without a transaction on that assumption.
                "server_settings": {
                    "jit": "off",
                    "default_transaction_isolation": "read committed",
                },
            },
        )
        event.listen(
            pg_engine.sync_engine,
            "handle_error",
            partial(_unavailable_on_timeout, settings.database_statement_timeout_seconds),
        )
        event.listen(pg_engine.sync_engine, "do_connect", _unavailable_on_refusal)
        return pg_engine

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = make_url(url).database or ""
    engine = create_async_engine(
        url,
        # Connections are file handles: keep one per concurrent request rather than opening
        # (and re-running the PRAGMAs below) for every request past the fifth.
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_OVERFLOW,
        # The connection used last comes first: its page cache is the warmest, while the
        # default round-robin spread every transaction over all 32 cold ones: more uploads
        # a second, less CPU per upload (bench/README.md).
        pool_use_lifo=True,
        # Never set skip_autocommit_rollback here: with isolation_level=None SQLAlchemy
        # takes these connections for autocommit ones, and would return them to the pool
        # mid-transaction, still holding the write gate.
        async_creator=sqlite_inline.connector(
            path,
            busy_timeout=settings.sqlite_lock_wait_seconds,
            durable=settings.sqlite_synchronous == "FULL",
        ),
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # BEGIN is ours to emit (below). NORMAL: COMMIT does not wait for the disk; with
        # CASEFOLIO_SQLITE_SYNCHRONOUS=FULL the connection syncs the log after releasing
        # the lock (walsync.WalSync).
        take_sqlite_transactions(
            dbapi_conn, "journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"
        )

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock up front: a deferred BEGIN that reads and then writes fails
        # with SQLITE_BUSY at once instead of waiting, because waiting could deadlock.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        driver: sqlite_inline.Connection = conn.connection.driver_connection
        driver.begin_on_first_statement(immediate=immediate)

    return engine


def take_sqlite_transactions(dbapi_conn: Any, *pragmas: str) -> None:
    """Given a new SQLite connection, take transaction control away from the driver (BEGIN
    is SQLAlchemy's, or ours, to emit), then set `pragmas` in order: outside any
    transaction, where they take effect. Serves the engine and the migrations (env.py)."""
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    for pragma in pragmas:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached, or did not answer in time: the request answers 503.

    `detail` says what the client may assume: nothing was changed, or (when a COMMIT went
    unanswered) that the change may or may not have been saved.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _unavailable_on_timeout(
    statement_timeout: float, context: ExceptionContext
) -> DatabaseUnavailable | None:
    if not isinstance(context.original_exception, TimeoutError) or context.connection is None:
        return None
    # asyncpg stopped waiting (command_timeout) and asked the server to cancel. The
    # connection may be half-open or still mid-cancel: discard it (SQLAlchemy would), and
    # every connection pooled before now too (SQLAlchemy would not, for a timeout): a
    # silent server is silent on all of them, and each would hold a request for as long.
    # Each is replaced at its next checkout, after a close that waits at most 2 s.
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = True
    if context.statement is None:  # COMMIT (or ROLLBACK): the outcome is unknown
        return DatabaseUnavailable(
            f"The database did not confirm the change within {statement_timeout:g} seconds; "
            "it may or may not have been saved. Check before retrying."
        )
    return DatabaseUnavailable(
        f"The database did not answer within {statement_timeout:g} seconds; nothing was "
        "changed. Retry shortly."
    )


def _unavailable_on_refusal(
    dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    # The connect itself, as SQLAlchemy would make it; asyncpg's OSError (refused, timed
    # out) is no DBAPI error, so handle_error never sees it.
    try:
        return dialect.loaded_dbapi.connect(*cargs, **cparams)
    except OSError as error:
        raise DatabaseUnavailable(
            "The database cannot be reached; nothing was changed. Retry shortly."
        ) from error


class ReadOnlySession(Session):
    """The sync session behind readers: a statement or flush that would write raises.

    On PostgreSQL readers run without a transaction (below), so a write slipped into a read
    would commit statement by statement instead of all or nothing.
    """


READ_ONLY = "a read session cannot write; use Database.writer / write()"


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_write_statements(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise RuntimeError(READ_ONLY)


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    raise RuntimeError(READ_ONLY)


async def hold_sqlite_write_lock(session: AsyncSession) -> None:
    """SQLite: begin the write session's transaction now, taking the write lock, where its
    BEGIN IMMEDIATE would wait for the first statement (fastpath/sqlite_inline.py): for what
    must happen holding it (db/stamps.py, domain/blob_locks.py)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    await raw.driver_connection.hold_write_lock()  # type: ignore[union-attr]


def reader_engine(engine: AsyncEngine) -> AsyncEngine:
    """Given the engine, return the one readers use.

    PostgreSQL (READ COMMITTED) takes a snapshot per statement whether or not a transaction
    surrounds it, so BEGIN and COMMIT only cost a read two round trips of its three:
    readers run in autocommit. An SQLite transaction does hold one snapshot for all of a
    read's statements, and costs nothing extra (BEGIN goes with the first statement).
    """
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


@dataclass(frozen=True)
class Database:
    """The engine and two session factories (readers, and writers that lock early on SQLite).
    The reader of single statements outside sessions is the fast path's (fastpath/)."""

    engine: AsyncEngine
    read_engine: AsyncEngine
    reader: async_sessionmaker[AsyncSession]
    writer: async_sessionmaker[AsyncSession]

    @classmethod
    def open(cls, settings: Settings) -> Database:
        engine = create_engine(settings)
        read_engine = reader_engine(engine)
        write_engine = engine.execution_options(**{WRITE_OPTION: True})
        return cls(
            engine=engine,
            read_engine=read_engine,
            reader=async_sessionmaker(
                read_engine, expire_on_commit=False, sync_session_class=ReadOnlySession
            ),
            # Writers record the domain events they emit before they commit (outbound/).
            writer=async_sessionmaker(
                write_engine, expire_on_commit=False, sync_session_class=RecordingSession
            ),
        )

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """Yield a session in a write transaction that commits on success."""
        async with self.writer() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Yield a session for reading; nothing is committed."""
        session = self.reader()
        try:
            yield session
        finally:
            # Not `async with`: SQLAlchemy 2.1 runs that close in a task of its own, so that a
            # cancelled request still finishes it, a task per request. A read session's close
            # does not wait (SQLite's rollback runs inline, an autocommit PostgreSQL one has
            # nothing to roll back), except to disconnect a PostgreSQL overflow connection;
            # a cancellation just then leaves that one to the garbage collector.
            await session.close()

    async def close(self) -> None:
        await self.engine.dispose()
