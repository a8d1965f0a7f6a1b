"""The SQLite connection that runs statements on the event loop (fastpath/sqlite_inline.py).

Two `Database` objects on one file stand for two server processes: each has its own write
gate, so they meet only at SQLite's lock, as processes do. These tests run on a SQLite file
of their own in both suite runs.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.lowlevel
import httpx
import pytest
from sqlalchemy import Executable, Integer, String, column, select, table, text
from sqlalchemy.exc import IntegrityError, OperationalError

from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.db import migrate
from casefolio.db.engine import Database
from casefolio.fastpath.sqlite_inline import Connection, is_lock_timeout
from casefolio.fastpath.statements import StatementReader
from casefolio.fastpath.walsync import WalSync
from tests.factories import make_actor, switch_api


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path, database_url="")
    with sqlite3.connect(tmp_path / "casefolio.db") as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # as casefolio's first connection leaves it
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)")
    return settings


async def _names(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.scalars(text("SELECT name FROM items ORDER BY id"))).all())


async def test_a_writer_waits_for_another_process_without_blocking_the_event_loop(
    settings: Settings,
) -> None:
    first, second = Database.open(settings), Database.open(settings)
    events: list[str] = []
    holding = anyio.Event()
    try:

        async def hold_lock() -> None:
            async with first.write() as session:
                await session.execute(text("INSERT INTO items (name) VALUES ('first')"))
                holding.set()
                await anyio.sleep(0.3)
                events.append("first commits")

        async def wait_for_lock() -> None:
            await holding.wait()
            async with second.write() as session:
                # The session's first statement takes the lock (BEGIN IMMEDIATE).
                await session.execute(text("INSERT INTO items (name) VALUES ('second')"))
                events.append("second has the lock")

        async def read_meanwhile() -> None:
            await holding.wait()
            await anyio.sleep(0.05)
            # The second "process" is waiting for the lock; its loop still serves reads.
            events.append(f"read {await _names(second)}")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(hold_lock)
            tasks.start_soon(wait_for_lock)
            tasks.start_soon(read_meanwhile)

        assert events == ["read []", "first commits", "second has the lock"]
        assert await _names(second) == ["first", "second"]
    finally:
        await first.close()
        await second.close()


async def test_a_writer_gives_up_after_the_lock_wait(settings: Settings) -> None:
    holder = sqlite3.connect(settings.data_dir / "casefolio.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    impatient = Database.open(_waiting(settings, 0.2))
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            async with impatient.write() as session:
                await session.execute(text("INSERT INTO items (name) VALUES ('late')"))
        assert time.monotonic() - started >= 0.2
        holder.execute("ROLLBACK")
        # The gate was released with the failure: the next writer goes through.
        async with impatient.write() as session:
            await session.execute(text("INSERT INTO items (name) VALUES ('on time')"))
        assert await _names(impatient) == ["on time"]
    finally:
        holder.close()
        await impatient.close()


async def test_writers_in_one_process_take_turns_and_a_failure_frees_the_gate(
    settings: Settings,
) -> None:
    db = Database.open(settings)
    failures: list[str] = []
    try:

        async def insert(name: str) -> None:
            try:
                async with db.write() as session:
                    await session.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": name})
                    await anyio.lowlevel.checkpoint()  # let the others queue up behind this writer
            except IntegrityError:
                failures.append(name)

        async with anyio.create_task_group() as tasks:
            for i in range(40):
                # Every tenth name repeats an earlier one: its writer fails and rolls back.
                tasks.start_soon(insert, f"item {i - 1 if i % 10 == 9 else i}")

        assert sorted(failures) == ["item 18", "item 28", "item 38", "item 8"]
        assert len(await _names(db)) == 36
    finally:
        await db.close()


@pytest.fixture
def impatient_installation(tmp_path: Path) -> Settings:
    """A migrated SQLite installation whose writers wait 0.2 s for the lock."""
    settings = Settings(data_dir=tmp_path / "data", database_url="", sqlite_lock_wait_seconds=0.2)
    migrate.upgrade(settings)
    return settings


async def test_the_api_answers_503_when_another_process_keeps_the_lock(
    impatient_installation: Settings,
) -> None:
    settings = impatient_installation
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        db: Database = app.state.casefolio.db
        await switch_api(db, on=True)
        operator = await make_actor(db, operator=True)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as client:
            holder = sqlite3.connect(settings.data_dir / "casefolio.db", isolation_level=None)
            try:
                # Authentication is remembered first, so only the write itself needs the lock.
                assert (await client.get("/projects", headers=operator.headers)).status_code == 200
                holder.execute("BEGIN IMMEDIATE")
                refused = await client.post(
                    "/projects", json={"name": "Smith v Jones"}, headers=operator.headers
                )
                holder.execute("ROLLBACK")
            finally:
                holder.close()
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "1"
            assert "nothing was changed" in refused.json()["detail"]
            assert (await client.get("/projects", headers=operator.headers)).json() == []
            created = await client.post(
                "/projects", json={"name": "Smith v Jones"}, headers=operator.headers
            )
            assert created.status_code == 201, created.text


async def test_writers_queued_behind_another_process_share_one_deadline(settings: Settings) -> None:
    holder = sqlite3.connect(settings.data_dir / "casefolio.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    db = Database.open(_waiting(settings, 0.3))
    refused: list[str] = []
    try:

        async def write(name: str) -> None:
            try:
                async with db.write() as session:
                    await session.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": name})
            except OperationalError as error:
                assert is_lock_timeout(error)
                refused.append(name)

        # Eight writers in line: each gives up 0.3 s after it started waiting, so all are
        # refused well before the 2.4 s that waiting one after another would take.
        with anyio.fail_after(1.5):
            async with anyio.create_task_group() as tasks:
                for i in range(8):
                    tasks.start_soon(write, f"item {i}")
        assert len(refused) == 8
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await db.close()


async def test_a_stale_read_transaction_fails_at_once_instead_of_waiting(
    settings: Settings,
) -> None:
    """A deferred transaction that read and then wants to write cannot be helped by waiting:
    its snapshot is already older than the other writer's. SQLite's at-once error stands."""
    db = Database.open(_waiting(settings, 60))
    holder = sqlite3.connect(settings.data_dir / "casefolio.db", isolation_level=None)
    try:
        async with db.read() as session:
            await session.execute(text("SELECT count(*) FROM items"))
            holder.execute("BEGIN IMMEDIATE")
            with anyio.fail_after(5), pytest.raises(OperationalError, match="locked"):
                await session.execute(text("INSERT INTO items (name) VALUES ('late')"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await db.close()


def _waiting(settings: Settings, seconds: float) -> Settings:
    """The same installation, with writers that wait `seconds` for the lock."""
    return settings.model_copy(update={"sqlite_lock_wait_seconds": seconds})


async def test_a_read_session_sees_one_snapshot_across_its_statements(settings: Settings) -> None:
    # BEGIN is sent with a session's first statement, not when SQLAlchemy begins: the
    # session must still be one transaction, blind to a commit between its statements.
    reader, writer = Database.open(settings), Database.open(settings)
    try:
        async with reader.read() as session:
            before = (await session.scalars(text("SELECT count(*) FROM items"))).one()
            async with writer.write() as other:
                await other.execute(text("INSERT INTO items (name) VALUES ('meanwhile')"))
            after = (await session.scalars(text("SELECT count(*) FROM items"))).one()
        assert (before, after) == (0, 0)
        assert await _names(reader) == ["meanwhile"]
    finally:
        await reader.close()
        await writer.close()


async def test_a_write_transaction_takes_the_lock_with_its_first_statement(
    settings: Settings,
) -> None:
    first, second = Database.open(settings), Database.open(settings)
    try:
        async with first.write() as idle:
            # No statement yet, so no lock: another process writes without waiting.
            with anyio.fail_after(2):
                async with second.write() as session:
                    await session.execute(text("INSERT INTO items (name) VALUES ('second')"))
            await idle.execute(text("INSERT INTO items (name) VALUES ('first')"))
            # Now the lock is held until `first` commits: a second writer is refused.
            probe = sqlite3.connect(settings.data_dir / "casefolio.db", timeout=0)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    probe.execute("BEGIN IMMEDIATE")
            finally:
                probe.close()
        assert await _names(first) == ["second", "first"]
    finally:
        await first.close()
        await second.close()


async def _wal_sync_of(db: Database) -> WalSync | None:
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Connection = raw.driver_connection  # type: ignore[assignment]
        async with db.read() as session:
            synchronous = (await session.execute(text("PRAGMA synchronous"))).scalar_one()
        assert synchronous == 1  # NORMAL: COMMIT itself never waits for the disk
        return driver._wal_sync


async def test_a_commit_that_wrote_returns_once_the_log_is_on_disk(settings: Settings) -> None:
    db, other = Database.open(settings), Database.open(settings)
    try:
        wal_sync = await _wal_sync_of(db)
        assert wal_sync is not None and wal_sync is not await _wal_sync_of(other)
        before = wal_sync.syncs
        await _names(db)  # a read commits without a flush
        assert wal_sync.syncs == before
        events: list[str] = []
        committed = anyio.Event()
        others_wrote = threading.Event()
        flush = wal_sync.sync

        def slow_first_sync() -> None:
            if not committed.is_set():
                anyio.from_thread.run_sync(committed.set)
                assert others_wrote.wait(5), "no one else could write during the flush"
                events.append("first flushed")
            flush()

        wal_sync.sync = slow_first_sync  # type: ignore[method-assign]

        async def first_writer() -> None:
            async with db.write() as session:
                await session.execute(text("INSERT INTO items (name) VALUES ('first')"))
            events.append("first commit returned")

        async def write(where: Database, name: str) -> None:
            async with where.write() as session:
                await session.execute(text(f"INSERT INTO items (name) VALUES ('{name}')"))

        async def same_process_writer() -> None:
            await write(db, "same process")
            events.append("same process returned")

        async def others() -> None:
            await committed.wait()
            assert "first" in await _names(other)  # committed, not yet flushed
            # Neither SQLite's lock nor this process's write gate waits for the flush: a
            # writer of this process commits meanwhile (others see its row at once)...
            tasks.start_soon(same_process_writer)
            with anyio.fail_after(2):
                # Polled: another connection's view has no event to wait for.
                while "same process" not in await _names(other):  # noqa: ASYNC110
                    await anyio.sleep(0.01)
                # ... and one of another process writes, and returns: its flush is its own.
                await write(other, "other process")
            events.append("others wrote")
            others_wrote.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first_writer)
            tasks.start_soon(others)
        # The same-process writer's commit came after the first flush had started, so the
        # first could not cover it: it waited for the next.
        assert events == [
            "others wrote",
            "first flushed",
            "first commit returned",
            "same process returned",
        ]
        assert wal_sync.syncs == before + 2  # the first writer's, and the same-process one's
    finally:
        await db.close()
        await other.close()


async def test_commits_that_finish_during_a_flush_share_the_next(tmp_path: Path) -> None:
    wal_sync = WalSync(str(tmp_path / "casefolio.db"))
    (tmp_path / "casefolio.db-wal").write_bytes(b"log")
    started = [threading.Event(), threading.Event()]
    release = [threading.Event(), threading.Event()]
    flush = wal_sync.sync

    def gated_sync() -> None:
        n = wal_sync.syncs  # 0 for the first flush, 1 for the second
        started[n].set()
        assert release[n].wait(5), "the test never released this flush"
        flush()

    wal_sync.sync = gated_sync  # type: ignore[method-assign]
    returned: list[int] = []
    first_returned = anyio.Event()

    async def commit(number: int) -> None:
        await wal_sync.flush()
        returned.append(number)
        if number == 0:
            first_returned.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(commit, 0)
        await anyio.to_thread.run_sync(started[0].wait)
        for number in range(1, 6):  # finish while the first flush is out
            tasks.start_soon(commit, number)
        await anyio.sleep(0.05)
        assert returned == []  # none of them is on disk yet
        release[0].set()
        await anyio.to_thread.run_sync(started[1].wait)
        with anyio.fail_after(5):
            await first_returned.wait()
        # The first flush may have started before their commits: they wait for the next.
        assert not release[1].is_set() and returned == [0]
        release[1].set()
    assert sorted(returned) == [0, 1, 2, 3, 4, 5]
    assert wal_sync.syncs == 2  # five commits, one flush


async def test_a_failed_flush_fails_each_commit_waiting_on_it(tmp_path: Path) -> None:
    wal_sync = WalSync(str(tmp_path / "casefolio.db"))
    failing = threading.Event()

    def sync() -> None:
        assert failing.wait(5)
        raise OSError(5, "Input/output error")

    wal_sync.sync = sync  # type: ignore[method-assign]
    outcomes: list[str] = []

    async def commit() -> None:
        try:
            await wal_sync.flush()
            outcomes.append("durable")
        except OSError as error:
            outcomes.append(error.strerror or "")

    async with anyio.create_task_group() as tasks:
        for _ in range(4):
            tasks.start_soon(commit)
        await anyio.sleep(0.05)
        failing.set()
    assert outcomes == ["Input/output error"] * 4


async def test_with_synchronous_normal_commits_do_not_flush(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="", sqlite_synchronous="NORMAL")
    db = Database.open(settings)
    try:
        assert await _wal_sync_of(db) is None
    finally:
        await db.close()


async def test_the_connection_used_last_is_used_next(settings: Settings) -> None:
    # Its page cache is the warmest; handing out connections in turn kept every cache cold.
    db = Database.open(settings)
    try:

        async def hold_one(drivers: list[object]) -> None:
            async with db.read() as session:
                conn = await session.connection()
                drivers.append((await conn.get_raw_connection()).driver_connection)
                await anyio.sleep(0.05)  # all three open at once: three connections

        opened: list[object] = []
        async with anyio.create_task_group() as tasks:
            for _ in range(3):
                tasks.start_soon(hold_one, opened)
        assert len({id(c) for c in opened}) == 3
        reused: list[object] = []
        for _ in range(3):
            async with db.read() as session:
                conn = await session.connection()
                reused.append((await conn.get_raw_connection()).driver_connection)
        assert len({id(c) for c in reused}) == 1  # in turn, it would have been all three
    finally:
        await db.close()


def _database_only_we_open(tmp_path: Path, lock_wait: float) -> Settings:
    # Any other open connection would keep the exclusive-mode blocker below from locking.
    with closing(sqlite3.connect(tmp_path / "casefolio.db", isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO items (name) VALUES ('kept')")
    return Settings(data_dir=tmp_path, database_url="", sqlite_lock_wait_seconds=lock_wait)


def _keep_readers_out(path: Path) -> sqlite3.Connection:
    # A connection in exclusive locking mode keeps even WAL readers out (SQLITE_BUSY), as
    # another process recovering the log would, briefly.
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("PRAGMA locking_mode=EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    return blocker


# The statement reader runs a plain SELECT compiled once (fastpath/prepared.py), anything else
# through SQLAlchemy: both ways must wait, give up and fail alike.
ITEMS = table("items", column("id", Integer), column("name", String))
STATEMENTS = pytest.mark.parametrize(
    "statement",
    [select(ITEMS.c.name), text("SELECT name FROM items")],
    ids=["prepared select", "sqlalchemy text"],
)


@STATEMENTS
async def test_a_statement_read_waits_out_a_busy_database_without_blocking_the_loop(
    tmp_path: Path, statement: Executable
) -> None:
    own = _database_only_we_open(tmp_path, lock_wait=5.0)
    db = Database.open(own)
    reader = StatementReader.for_database(db, own)
    blocker = _keep_readers_out(tmp_path / "casefolio.db")
    ticks = 0
    try:

        async def release_later() -> None:
            nonlocal ticks
            for _ in range(20):
                await anyio.sleep(0.01)
                ticks += 1
            blocker.close()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(release_later)
            rows = await reader.execute(statement, {})
            ticks_when_read = ticks
        assert [tuple(row) for row in rows] == [("kept",)]
        # It answered only once the blocker had gone, and the loop ran other tasks meanwhile.
        assert ticks_when_read == 20
    finally:
        blocker.close()
        reader.close()
        await db.close()


@STATEMENTS
async def test_a_statement_read_gives_up_after_the_lock_wait(
    tmp_path: Path, statement: Executable
) -> None:
    own = _database_only_we_open(tmp_path, lock_wait=0.1)
    db = Database.open(own)
    reader = StatementReader.for_database(db, own)
    blocker = _keep_readers_out(tmp_path / "casefolio.db")
    try:
        with pytest.raises(OperationalError) as refused:
            await reader.execute(statement, {})
        assert is_lock_timeout(refused.value)
        # Once the lock is gone the reader reads again, on a connection of its own.
        blocker.close()
        assert [tuple(row) for row in await reader.execute(statement, {})] == [("kept",)]
    finally:
        blocker.close()
        reader.close()
        await db.close()


async def test_the_statement_readers_connections_cannot_write(settings: Settings) -> None:
    # The guard for statements SQLAlchemy cannot tell apart from reads (text).
    db = Database.open(settings)
    reader = StatementReader.for_database(db, settings)
    try:
        with pytest.raises(OperationalError, match="readonly"):
            await reader.execute(text("INSERT INTO items (name) VALUES ('no')"), {})
        assert await _names(db) == []
    finally:
        reader.close()
        await db.close()
