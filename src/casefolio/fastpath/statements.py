"""The StatementReader: reads of one statement each, outside any session (db/reads.py's
StatementRunner), on the cheapest path each database allows."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Hashable, Mapping
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, Engine, Executable, NullPool, make_url, text
from sqlalchemy.util import greenlet_spawn

from casefolio.config import Settings
from casefolio.db.engine import READ_ONLY, Database
from casefolio.db.reads import BatchedRead, Rows
from casefolio.db.types import register_functions
from casefolio.fastpath import prepared, sqlite_inline
from casefolio.fastpath.batching import Batcher, Coalescer
from casefolio.fastpath.prepared import PreparedRead

#: SELECTs SQLite's StatementReader keeps compiled (fastpath/prepared.py).
PREPARED_READS = 64

#: PostgreSQL's version of the database: the statement's snapshot (fastpath/answers.py).
_SNAPSHOT = text("SELECT pg_current_snapshot()::text")


class StatementReader:
    """Reads of one statement each, outside any session: the cheapest path each database
    allows, for the reads integrations make most (documents.get, document_pages.list_page).

    Through an AsyncConnection such a read pays SQLAlchemy's asyncio layer three times
    (checkout, execute, close each run in a greenlet of their own). On SQLite, where
    statements run on the event loop anyway (sqlite_inline), that was most of the
    document read in-process (bench/README.md). So SQLite reads here run on a plain
    synchronous connection, made read-only by `PRAGMA query_only`, on the event loop: one
    statement is one consistent snapshot, and in WAL mode a reader does not wait for writers
    (a rare SQLITE_BUSY, e.g. while another connection recovers the log, is waited out with
    asyncio.sleep). PostgreSQL reads run the same synchronous code in one greenlet, so the
    round trip is awaited without blocking.

    SQLite's reader keeps one connection rather than checking one out of a pool per read:
    its statements run one at a time on the event loop, so no other read can reach it
    meanwhile, and a checkout plus return per read costs (bench/README.md). The connection
    is in autocommit, so it holds no snapshot between reads. Plain SELECTs run compiled once
    (fastpath/prepared.py), without SQLAlchemy's per-execution work (bench/README.md).

    On PostgreSQL, reads of a BatchedRead that arrive while one is out share the next round
    trip (fastpath/batching.py). SQLite's have no round trip to share.
    """

    def __init__(self, engine: Engine, *, on_event_loop: bool, lock_wait: float = 0.0) -> None:
        self.engine = engine
        self._on_event_loop = on_event_loop
        self._lock_wait = lock_wait
        self._held: Connection | None = None
        self._prepared_reads: dict[Executable, PreparedRead | None] = {}
        self._batcher = None if on_event_loop else Batcher(self.execute)
        # Which connection SQLite's data_version is of: each one opened gets the next.
        self._connections = itertools.count(1)
        self._snapshots: Coalescer[None, Hashable] | None = (
            None if on_event_loop else Coalescer(self._snapshot)
        )

    @property
    def dialect_name(self) -> str:
        return self.engine.dialect.name

    async def execute(self, statement: Executable, parameters: Mapping[str, Any]) -> Rows:
        """Given a read-only statement and its parameters, return all its rows."""
        if getattr(statement, "is_dml", False):
            # SQLite's connections would refuse it (query_only); a PostgreSQL one would commit.
            raise RuntimeError(READ_ONLY)
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

    async def version(self) -> Hashable:
        """The database's version now: equal to a version returned before only if nothing
        was committed in between, by any connection of any process (fastpath/answers.py).

        SQLite: the reader's connection and its `PRAGMA data_version`, which moves when
        another connection commits (this one never writes). PostgreSQL: the snapshot of a
        statement run for it (concurrent callers share one, sent after each arrived)."""
        if self._snapshots is not None:
            return await self._snapshots(None)
        return await sqlite_inline.until_not_busy(self._data_version, lock_wait=self._lock_wait)

    def _data_version(self) -> Hashable:
        connection, self._held = self._held or self.engine.connect(), None
        try:
            serial = connection.info.get("reader_serial")
            if serial is None:
                serial = connection.info["reader_serial"] = next(self._connections)
            driver = connection.connection.driver_connection
            if not isinstance(driver, sqlite3.Connection):
                raise TypeError(f"data_version needs sqlite3, not {type(driver)}")
            [(value,)] = driver.execute("PRAGMA data_version").fetchall()
        except BaseException:
            connection.close()
            raise
        self._held = connection
        return (serial, value)

    async def _snapshot(self, callers: list[None]) -> list[Hashable]:
        [(snapshot,)] = await self.execute(_SNAPSHOT, {})
        return [snapshot] * len(callers)

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
    def for_database(cls, db: Database, settings: Settings) -> StatementReader:
        """Given the database and its settings, return its reader."""
        if db.engine.dialect.name == "sqlite":
            return cls.for_sqlite(
                make_url(settings.effective_database_url).database or "",
                lock_wait=settings.sqlite_lock_wait_seconds,
            )
        return cls(db.read_engine.sync_engine, on_event_loop=False)

    @classmethod
    def for_sqlite(cls, path: str, *, lock_wait: float) -> StatementReader:
        """Given a database file, return a reader of it on the event loop."""

        def connect() -> sqlite3.Connection:
            # Autocommit (a SELECT is then its own read transaction) and no busy handler,
            # which would sleep on the event loop.
            conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")
            register_functions(conn)
            return conn

        # No pool: the reader keeps its one connection, and opens another only after a
        # failed read closed it.
        engine = sqlalchemy.create_engine("sqlite+pysqlite://", creator=connect, poolclass=NullPool)
        return cls(engine, on_event_loop=True, lock_wait=lock_wait)
