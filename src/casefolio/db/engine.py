"""Engine and session factories, with the SQLite settings that make it safe under load."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeAlias

import sqlalchemy
from sqlalchemy import Connection, Engine, Executable, NullPool, event, make_url
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.util import greenlet_spawn

from casefolio.config import Settings
from casefolio.db import prepared, sqlite_inline
from casefolio.db.batching import BatchedRead, Batcher, Rows
from casefolio.db.prepared import PreparedRead
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
#: SELECTs SQLite's StatementReader keeps compiled (db/prepared.py).
PREPARED_READS = 64


def create_engine(settings: Settings) -> AsyncEngine:
    """Given settings, return an async engine; SQLite gets WAL, foreign keys and statements
    run on the event loop (db/sqlite_inline.py)."""
    url = settings.effective_database_url
    if not url.startswith("sqlite"):
        # No pre-ping: a round trip per checkout cost a third of a document read's CPU.
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
            connect_args={"command_timeout": settings.database_statement_timeout_seconds},
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
        # default round-robin spread every transaction over all 32 cold ones. Alternating
        # runs of 4,000 uploads (2 workers): 466-499 -> 500-526 docs/s, less CPU per upload.
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
        # Take transaction control away from pysqlite so that BEGIN is ours to emit (below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL: COMMIT does not wait for the disk; with CASEFOLIO_SQLITE_SYNCHRONOUS=FULL
        # the connection syncs the log after releasing the lock (sqlite_inline.WalSync).
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock up front: a deferred BEGIN that reads and then writes fails
        # with SQLITE_BUSY at once instead of waiting, because waiting could deadlock.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        driver: sqlite_inline.Connection = conn.connection.driver_connection
        driver.begin_on_first_statement(immediate=immediate)

    return engine


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


_READ_ONLY = "a read session cannot write; use Database.writer / write()"


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_write_statements(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise RuntimeError(_READ_ONLY)


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    raise RuntimeError(_READ_ONLY)


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


class StatementReader:
    """Reads of one statement each, outside any session: the cheapest path each database
    allows, for the reads integrations make most (documents.get, documents.list_page).

    Through an AsyncConnection such a read pays SQLAlchemy's asyncio layer three times
    (checkout, execute, close each run in a greenlet of their own). On SQLite, where
    statements run on the event loop anyway (sqlite_inline), that was two thirds of the
    document read in-process (bench/README.md). So SQLite reads here run on a plain
    synchronous connection, made read-only by `PRAGMA query_only`, on the event loop: one
    statement is one consistent snapshot, and in WAL mode a reader does not wait for writers
    (a rare SQLITE_BUSY, e.g. while another connection recovers the log, is waited out with
    asyncio.sleep). PostgreSQL reads run the same synchronous code in one greenlet, so the
    round trip is awaited without blocking.

    SQLite's reader keeps one connection rather than checking one out of a pool per read:
    its statements run one at a time on the event loop, so no other read can reach it
    meanwhile, and checkout plus return cost a seventh of a GET in-process. The connection
    is in autocommit, so it holds no snapshot between reads. Plain SELECTs run compiled once
    (db/prepared.py), without SQLAlchemy's per-execution work (bench/README.md).

    On PostgreSQL, reads of a BatchedRead that arrive while one is out share the next round
    trip (db/batching.py). SQLite's have no round trip to share.
    """

    def __init__(self, engine: Engine, *, on_event_loop: bool, lock_wait: float = 0.0) -> None:
        self.engine = engine
        self._on_event_loop = on_event_loop
        self._lock_wait = lock_wait
        self._held: Connection | None = None
        self._prepared_reads: dict[Executable, PreparedRead | None] = {}
        self._batcher = None if on_event_loop else Batcher(self.execute)

    async def execute(self, statement: Executable, parameters: Mapping[str, Any]) -> Rows:
        """Given a read-only statement and its parameters, return all its rows."""
        if getattr(statement, "is_dml", False):
            # SQLite's connections would refuse it (query_only); a PostgreSQL one would commit.
            raise RuntimeError(_READ_ONLY)
        if self._on_event_loop:
            return await sqlite_inline.until_not_busy(
                lambda: self._rows(statement, parameters), lock_wait=self._lock_wait
            )
        return await greenlet_spawn(self._rows, statement, parameters)

    async def execute_batched(self, read: BatchedRead, parameters: Mapping[str, Any]) -> Rows:
        """Given a batched read and its keys' values, return the rows `read.single` returns."""
        if self._batcher is None:
            return await self.execute(read.single, parameters)
        return await self._batcher.execute(read, parameters)

    def close(self) -> None:
        """Close the connections it opened (SQLite's; on PostgreSQL the engine's pool is
        shared with the sessions and closed with them)."""
        if self._on_event_loop:
            if self._held is not None:
                self._held.close()
                self._held = None
            self.engine.dispose()

    def _rows(self, statement: Executable, parameters: Mapping[str, Any]) -> Rows:
        if not self._on_event_loop:
            with self.engine.connect() as connection:
                return connection.execute(statement, parameters).all()
        # Taken while in use, so that even a read started meanwhile would open its own.
        connection, self._held = self._held or self.engine.connect(), None
        try:
            compiled_once = self._prepared(statement)
            rows: Rows
            if compiled_once is None:
                rows = connection.execute(statement, parameters).all()
            else:
                driver = connection.connection.driver_connection
                if not isinstance(driver, sqlite3.Connection):
                    raise TypeError(f"prepared statements need sqlite3, not {type(driver)}")
                rows = compiled_once.run(driver, parameters)
        except BaseException:
            # Its state is unknown (SQLITE_BUSY, a bad statement): the next read opens another.
            connection.close()
            raise
        self._held = connection
        return rows

    def _prepared(self, statement: Executable) -> PreparedRead | None:
        # Keyed by the statement itself: the hot ones are module constants, built once.
        try:
            return self._prepared_reads[statement]
        except KeyError:
            pass
        if len(self._prepared_reads) >= PREPARED_READS:
            self._prepared_reads.clear()  # ad-hoc statements; the hot ones come back at once
        found = self._prepared_reads[statement] = prepared.prepare(statement, self.engine.dialect)
        return found

    @classmethod
    def for_sqlite(cls, path: str, *, lock_wait: float) -> StatementReader:
        """Given a database file, return a reader of it on the event loop."""

        def connect() -> sqlite3.Connection:
            # Autocommit (a SELECT is then its own read transaction) and no busy handler,
            # which would sleep on the event loop.
            conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")
            return conn

        # No pool: the reader keeps its one connection, and opens another only after a
        # failed read closed it.
        engine = sqlalchemy.create_engine("sqlite+pysqlite://", creator=connect, poolclass=NullPool)
        return cls(engine, on_event_loop=True, lock_wait=lock_wait)


#: What a read runs its statements on: a session, or for the hottest reads the
#: StatementReader, which skips the session and SQLAlchemy's asyncio layer.
Reader: TypeAlias = AsyncSession | StatementReader


async def read_all(db: Reader, statement: Executable, parameters: Mapping[str, Any]) -> Rows:
    """Given a reader, a read-only statement and its parameters, return all its rows."""
    if isinstance(db, StatementReader):
        return await db.execute(statement, parameters)
    rows: Rows = (await db.execute(statement, parameters)).all()
    return rows


async def read_rows(db: Reader, read: BatchedRead, parameters: Mapping[str, Any]) -> Rows:
    """Given a reader, a batched read and its keys' values, return the read's rows."""
    if isinstance(db, StatementReader):
        return await db.execute_batched(read, parameters)
    rows: Rows = (await db.execute(read.single, parameters)).all()
    return rows


@dataclass(frozen=True)
class Database:
    """The engine, two session factories (readers, and writers that lock early on SQLite),
    and the reader of single statements."""

    engine: AsyncEngine
    read_engine: AsyncEngine
    reader: async_sessionmaker[AsyncSession]
    writer: async_sessionmaker[AsyncSession]
    statements: StatementReader

    @classmethod
    def open(cls, settings: Settings) -> Database:
        engine = create_engine(settings)
        read_engine = reader_engine(engine)
        write_engine = engine.execution_options(**{WRITE_OPTION: True})
        if engine.dialect.name == "sqlite":
            statements = StatementReader.for_sqlite(
                make_url(settings.effective_database_url).database or "",
                lock_wait=settings.sqlite_lock_wait_seconds,
            )
        else:
            statements = StatementReader(read_engine.sync_engine, on_event_loop=False)
        return cls(
            engine=engine,
            read_engine=read_engine,
            statements=statements,
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
        self.statements.close()
