"""SQLite for SQLAlchemy's asyncio engine, without a thread hop per statement.

aiosqlite runs every call (cursor, execute, fetchall, close: four per statement) on a thread
of its own. Each hop costs several times what SQLite itself needs for the statements
casefolio runs, and under load the connection threads queue for the GIL behind the event
loop (bench/README.md). So this connection runs statements on the event loop thread.
The one step that can wait long, the write lock, is waited for without blocking the loop:
`BEGIN IMMEDIATE` is tried without a busy handler; writers in this process first queue on an
asyncio lock, and a lock held by another process is retried after `asyncio.sleep`. Readers
never wait in WAL mode; a rare SQLITE_BUSY (e.g. WAL recovery) is retried the same way.

`COMMIT` runs inline too, and does not wait for the disk: SQLite runs with
`synchronous=NORMAL`, so the write lock is released as soon as the transaction is in the
write-ahead log. Then, with the lock free for the next writer and the event loop free for
other requests, a worker thread fsyncs the log (`WalSync`) before `commit()` returns; so a
transaction is durable before its client is told it is done, as with `synchronous=FULL`, and
commits that finish while a flush is out share the next one ("early lock release" and group
commit: one fsync, one thread trip for several commits under concurrent uploads). A request
alone in the process has nobody to share a flush with: it fsyncs on the loop instead
(fastpath/inflight.py). The price: other connections may see a transaction one flush before
it is durable, and a power loss in that moment takes it back although they saw it (its
client never heard it succeed).
SQLite's FULL mode fsyncs inside COMMIT, holding the lock and blocking the loop meanwhile;
`bench ingest` is faster with this (bench/README.md). `CASEFOLIO_SQLITE_SYNCHRONOUS=NORMAL`
skips the flush (the last commits may be lost on power loss, never corrupted).

The checkpoint SQLite runs at a commit once the log has grown past 1,000 pages stays inline
(it syncs the log before and the database after copying). In a thread, COMMIT measured worse:
the hop back to the loop waits for the GIL behind other requests' work, so the write lock was
held longer per upload (bench/README.md).

It plugs into the aiosqlite dialect through `create_async_engine(async_creator=...)`, and
implements the part of aiosqlite's interface that SQLAlchemy's adapter calls.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import sqlalchemy.exc

from casefolio.db.types import register_functions
from casefolio.fastpath.walsync import WalSync

T = TypeVar("T")

# Worth waiting for: another connection holds the lock, or is recovering the WAL after a
# crash. Not SQLITE_BUSY_SNAPSHOT (517): a read snapshot that went stale stays stale.
_RETRY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_BUSY_RECOVERY, sqlite3.SQLITE_LOCKED})
# Retry delays while another process holds the write lock. Writes hold it briefly, so a
# short cap matters (`bench ingest`, bench/README.md); each retry costs one failed, cheap
# BEGIN IMMEDIATE.
_FIRST_BACKOFF = 0.0005
_MAX_BACKOFF = 0.002


class WriteGate:
    """Writers of one database in one process take turns here before asking SQLite."""

    def __init__(self) -> None:
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def lock(self) -> asyncio.Lock:
        # One engine may be used from several event loops over its life (tests, CLI runs).
        loop = asyncio.get_running_loop()
        found = self._locks.get(loop)
        if found is None:
            self._locks = {lp: lk for lp, lk in self._locks.items() if not lp.is_closed()}
            found = self._locks[loop] = asyncio.Lock()
        return found


def _error_code(error: BaseException) -> int | None:
    # sqlite3's own error, or SQLAlchemy's wrapping of it (.orig).
    code: int | None = getattr(getattr(error, "orig", None) or error, "sqlite_errorcode", None)
    return code


async def until_not_busy(step: Callable[[], T], *, lock_wait: float, deadline: float = 0.0) -> T:
    """Run `step`, one statement (or one read); while another connection holds the lock it
    needs, wait on the event loop and retry until `deadline` (default: `lock_wait` seconds
    from the first refusal).

    A statement that answered SQLITE_BUSY changed nothing, so running it again is safe;
    callers only pass steps for which that holds (`Connection._may_retry`).
    """
    backoff = _FIRST_BACKOFF
    while True:
        try:
            return step()
        except (sqlite3.OperationalError, sqlalchemy.exc.OperationalError) as error:
            if _error_code(error) not in _RETRY_CODES:
                raise
            now = time.monotonic()
            deadline = deadline or now + lock_wait
            if now >= deadline:
                raise
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, _MAX_BACKOFF)


def is_lock_timeout(error: BaseException) -> bool:
    """Given a SQLAlchemy OperationalError, whether SQLite's lock wait ran out."""
    code = _error_code(error)
    # The primary code: SQLite reports extended ones (BUSY_RECOVERY, BUSY_SNAPSHOT, ...).
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _lock_wait_expired() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    return error


class Cursor:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._cursor = connection._conn.cursor()
        self.arraysize = 1

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        await self._run(lambda: self._cursor.execute(sql, parameters), single_statement=True)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> Cursor:
        rows = list(seq_of_parameters)  # a retry must see the same rows again
        await self._run(lambda: self._cursor.executemany(sql, rows), single_statement=False)
        return self

    async def _run(self, statement: Callable[[], object], *, single_statement: bool) -> None:
        """Run `statement` in the connection's transaction, beginning it first if its BEGIN is
        pending; a SQLITE_BUSY answer is waited out where running it again is safe
        (`Connection._may_retry`)."""
        connection = self._connection
        await connection._begin_if_pending()
        if connection._may_retry(single_statement=single_statement):
            await until_not_busy(statement, lock_wait=connection._busy_timeout)
        else:
            statement()
        connection._first_in_transaction = False

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self.arraysize)

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid


class _Inline:
    """aiosqlite's work queue, as SQLAlchemy's adapter reaches into it (isolation level)."""

    def __init__(self) -> None:
        self.put_nowait = self._run

    @staticmethod
    def _run(item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:  # handed to the awaiting caller, like aiosqlite does
            if future is not None:
                future.set_exception(error)
            return
        if future is not None:
            future.set_result(result)


class Connection:
    def __init__(
        self,
        conn: sqlite3.Connection,
        gate: WriteGate,
        busy_timeout: float,
        wal_sync: WalSync | None = None,
    ) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # aiosqlite's "is open" marker
        self._gate = gate
        self._busy_timeout = busy_timeout
        self._held: asyncio.Lock | None = None
        self._first_in_transaction = False
        self._pending_begin: str | None = None
        self._wal_sync = wal_sync
        self._changes_at_begin = 0
        self._immediate = False
        self._tx = _Inline()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        cursor = self.cursor()
        return await cursor.execute(sql, parameters)

    def run_holding_lock(self, sql: str, parameters: Sequence[Any]) -> list[Any] | None:
        """Given a statement, run it at once on this thread and return its rows, when this
        connection's write transaction holds the write lock and has run a statement (so
        nothing is left to begin and nothing to wait for); else None, for the caller to run
        it the adapter's way. For statements run inside a synchronous step of a transaction
        (the recorder's, at its commit), which the adapter would send through the event
        loop and back, a trip that costs several times SQLite's own work while every other
        writer waits for the lock."""
        if not self._immediate or self._pending_begin is not None or self._first_in_transaction:
            return None
        if not self._conn.in_transaction:
            return None
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql, parameters)
            return cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    def begin_on_first_statement(self, *, immediate: bool) -> None:
        """Open the transaction with the next statement rather than now.

        Called from SQLAlchemy's "begin" event: running BEGIN there cost a statement
        execution of its own through SQLAlchemy (bench/README.md), and a transaction that
        ends without a statement now costs nothing at all.
        """
        self._pending_begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    async def hold_write_lock(self) -> None:
        """Begin the transaction now if its BEGIN is still pending (a write's waits for the
        write lock): for what must happen holding the lock (db/stamps.py)."""
        await self._begin_if_pending()

    async def _begin_if_pending(self) -> None:
        sql, self._pending_begin = self._pending_begin, None
        if sql is None:
            return
        self._immediate = sql == "BEGIN IMMEDIATE"
        if self._immediate:
            await self._begin_immediate(sql)
        else:
            self._conn.execute(sql)  # deferred: takes no lock
        self._changes_at_begin = self._conn.total_changes
        self._first_in_transaction = True

    async def commit(self) -> None:
        self._first_in_transaction = False
        self._pending_begin = None
        wrote = False
        try:
            if self._conn.in_transaction:
                wrote = self._immediate or self._conn.total_changes != self._changes_at_begin
                self._conn.execute("COMMIT")  # inline, no fsync: see the module notes
        finally:
            self._release_gate()
        if wrote and self._wal_sync is not None:
            # Lock released, loop free; the caller hears "done" only once it is on disk.
            await self._wal_sync.flush()

    async def rollback(self) -> None:
        self._first_in_transaction = False
        self._pending_begin = None
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        finally:
            self._release_gate()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        self._release_gate()
        self._connection = None
        self._conn.close()

    def _may_retry(self, *, single_statement: bool) -> bool:
        """Whether a SQLITE_BUSY answer may be waited out by running the statement again.

        Safe when nothing has happened yet: the first statement of a transaction, or one
        statement on its own (atomic). Later in a transaction, waiting cannot help a read
        snapshot that went stale, and SQLite's at-once error is the right answer.
        """
        if self._conn.in_transaction:
            return self._first_in_transaction
        return single_statement

    async def _begin_immediate(self, sql: str) -> None:
        # One deadline for the whole wait, in the queue of this process's writers included:
        # the tenth writer in line must not wait ten times as long.
        deadline = time.monotonic() + self._busy_timeout
        if self._held is None:
            lock = self._gate.lock()
            try:
                async with asyncio.timeout(self._busy_timeout):
                    await lock.acquire()
            except TimeoutError:
                raise _lock_wait_expired() from None
            self._held = lock
        try:
            await until_not_busy(
                lambda: self._conn.execute(sql), lock_wait=self._busy_timeout, deadline=deadline
            )
        except BaseException:
            self._release_gate()
            raise

    def _release_gate(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.release()


def connector(
    path: str, *, busy_timeout: float, durable: bool = True
) -> Callable[[], Awaitable[Connection]]:
    """Given a database file, return an `async_creator` for `create_async_engine`.

    Connections run `synchronous=NORMAL`; with `durable`, each commit that wrote returns
    once the log is on disk (WalSync), without it the last commits may be lost on power loss.
    """
    gate = WriteGate()
    wal_sync = WalSync(path) if durable else None

    async def connect() -> Connection:
        # timeout=0: no busy handler inside SQLite, which would sleep on the event loop.
        conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        register_functions(conn)
        return Connection(conn, gate, busy_timeout, wal_sync)

    return connect
