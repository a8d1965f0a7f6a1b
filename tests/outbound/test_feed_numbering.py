"""The feed's numbers on PostgreSQL, whose writers do not take turns: a change is numbered
by its writer at its commit if no one else is numbering (recorder.number_own), else after
its commit by the next numberer (sealing.py), so `seq` grows in the order changes become
readable, whatever order their transactions began in, and a reader's cursor never misses
one. Real connections, committing in orders of the test's choosing. The tests that mean
something on SQLite too (whose recorder numbers as it writes) run on both."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Change
from casefolio.domain import events
from casefolio.outbound import audit, feed, recorder, sealing
from casefolio.outbound.signal import signal
from casefolio.outbound.worker import Worker
from tests.outbound.conftest import Matter, changes_since, feed_cursor

pg_only = pytest.mark.usefixtures("postgres_only")
#: PostgreSQL: the changes whose current row was written by the transaction that inserted
#: them, that is, numbered by their own writer (xmin is the 32-bit form of xid).
_NUMBERED_BY_THEIR_WRITER = text(
    "SELECT folder_id FROM changes WHERE seq IS NOT NULL AND folder_id IS NOT NULL"
    " AND xmin::text::bigint = xid % 4294967296"
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Readers here poll as fast as the writers commit (SQLite's the fastest)."""
    return settings.model_copy(update={"rate_limit_per_minute": 100_000})


@pytest.fixture
def postgres_only(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: the recorder numbers changes as it writes")


async def _record_now(session: AsyncSession, project_id: int, marks: list[int]) -> None:
    """Write the outbox rows (and audit entries) of `marks` in the session's open
    transaction at once, as the recorder does at a commit: the rows take their ids and
    transaction id now, and stay invisible until the transaction commits."""
    emitted = [events.FolderCreated(project_id=project_id, folder_id=m) for m in marks]
    await session.run_sync(
        lambda s: recorder.record(s.connection(), list(emitted), events.Actor("system"))
    )


def _marks(changes: list[dict[str, Any]]) -> list[int]:
    return [int(c["folderId"]) for c in changes]


def _seqs(changes: list[dict[str, Any]]) -> list[int]:
    return [int(c["seq"]) for c in changes]


async def _verified(db: Database) -> audit.Verdict:
    async with db.write() as session:
        await sealing.seal(session)
    async with db.read() as session:
        return await audit.verify(session)


@pg_only
async def test_writers_committing_out_of_their_start_order_are_read_in_commit_order_once(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    start_order = range(6)
    commit_order = [3, 0, 5, 1, 4, 2]
    cursor = await feed_cursor(client, matter.reader)
    writers: list[AsyncSession] = []
    for w in start_order:
        session = db.writer()
        await session.begin()
        await _record_now(session, matter.id, [10 * w + 1, 10 * w + 2])
        writers.append(session)
    seen: list[dict[str, Any]] = []
    try:
        page, cursor = await changes_since(client, matter.reader, cursor)
        assert page == []  # nothing has committed
        for w in commit_order:
            await writers[w].commit()
            # The reader numbers what has committed before it reads: no worker needed.
            page, cursor = await changes_since(client, matter.reader, cursor)
            assert _marks(page) == [10 * w + 1, 10 * w + 2]
            seen += page
    finally:
        for session in writers:
            await session.close()
    assert _marks(seen) == [10 * w + n for w in commit_order for n in (1, 2)]
    numbers = _seqs(seen)
    assert numbers == sorted(set(numbers))  # strictly increasing
    # The outbox rows' own ids follow the start order: the numbers do not.
    async with db.read() as session:
        ids = dict(
            (await session.execute(select(Change.folder_id, Change.id).where(Change.seq > 0))).all()
        )
    assert [ids[10 * w + 1] for w in commit_order] != sorted(ids[10 * w + 1] for w in commit_order)
    assert (await _verified(db)).first_bad_id is None


async def _read_while_writing(
    client: httpx.AsyncClient,
    matter: Matter,
    total: int,
    *,
    beside: Callable[[], Awaitable[None]],
    writing: list[Callable[[], Awaitable[None]]],
) -> list[dict[str, Any]]:
    """Run `writing` all at once, two tasks calling `beside` again and again until they are
    done (as several server processes' workers would), and a reader polling the feed with
    its cursor until it has `total` changes; return what the reader got, in its order."""
    cursor = await feed_cursor(client, matter.reader)
    written = anyio.Event()
    seen: list[dict[str, Any]] = []

    async def keep_going() -> None:
        while not written.is_set():
            await beside()
            await anyio.lowlevel.checkpoint()

    async def read_until_all_seen() -> None:
        nonlocal cursor
        while len(seen) < total:
            page, cursor = await changes_since(client, matter.reader, cursor)
            seen.extend(page)
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(keep_going)
            tasks.start_soon(keep_going)
            tasks.start_soon(read_until_all_seen)
            async with anyio.create_task_group() as writers:
                for write in writing:
                    writers.start_soon(write)
            written.set()
    return seen


@pg_only
async def test_concurrent_writers_and_sealers_give_a_polling_reader_every_change_once(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """Writers commit at once on their own connections, two sealers run beside them (as
    several server processes' workers would) and a reader polls with its cursor until it has
    every change: it gets each exactly once, in increasing seq."""
    writers, per_writer = 4, 15

    async def write(w: int) -> None:
        for n in range(per_writer):
            async with db.write() as session:
                events.emit(
                    session, events.FolderCreated(project_id=matter.id, folder_id=1000 * w + n)
                )

    async def seal() -> None:
        await sealing.number_pending(db)
        await sealing.seal_pending(db)

    seen = await _read_while_writing(
        client,
        matter,
        writers * per_writer,
        beside=seal,
        writing=[partial(write, w) for w in range(writers)],
    )
    expected = [1000 * w + n for w in range(writers) for n in range(per_writer)]
    assert sorted(_marks(seen)) == expected
    numbers = _seqs(seen)
    assert numbers == sorted(set(numbers))
    # Each writer's own changes come in its order (one committed after the other).
    for w in range(writers):
        mine = [m for m in _marks(seen) if m // 1000 == w]
        assert mine == [1000 * w + n for n in range(per_writer)]
    async with db.read() as session:
        assert await session.scalar(select(func.count()).where(Change.seq.is_(None))) == 0
        all_numbers = list(await session.scalars(select(Change.seq).order_by(Change.seq)))
    # One unbroken run: sealers that take turns neither skip nor repeat a number.
    assert all_numbers == list(range(all_numbers[0], all_numbers[0] + len(all_numbers)))
    verdict = await _verified(db)
    async with db.read() as session:
        entries = await session.scalar(select(func.count()).select_from(AuditEntry))
    assert verdict == audit.Verdict(int(entries or 0))


@pg_only
async def test_a_long_transaction_holds_back_nobody_and_its_change_comes_after_those_read(
    client: httpx.AsyncClient, db: Database, matter: Matter, settings: Settings
) -> None:
    worker = Worker(settings, db)
    try:
        await sealing.number_pending(db)  # the worker's round does this before its fan-out
        await sealing.seal_pending(db, wait=True)
        while await worker.fan_out():
            pass
        start = await feed_cursor(client, matter.reader)
        older = db.writer()
        await older.begin()
        try:
            # Its rows are written first: a smaller id and transaction id than the newer's.
            await _record_now(older, matter.id, [1])
            async with db.write() as newer:
                events.emit(newer, events.FolderCreated(project_id=matter.id, folder_id=2))
            early, cursor = await changes_since(client, matter.reader, start)
            assert _marks(early) == [2]  # not held back by the open transaction
            assert await worker.fan_out() == 1
            # Its audit entry waits for the older transaction (the chain's order is fixed
            # below the horizon); the feed did not.
            async with db.write() as session:
                assert await sealing.seal(session) == 0
            await older.commit()
        finally:
            await older.close()
        late, _ = await changes_since(client, matter.reader, cursor)
        assert _marks(late) == [1]
        assert int(late[0]["seq"]) > int(early[0]["seq"])
        everything, _ = await changes_since(client, matter.reader, start)
        assert _marks(everything) == [2, 1]
        assert await worker.fan_out() == 1
        async with db.read() as session:
            assert await feed.state(session, feed.FANNED_OUT) == int(late[0]["seq"])
    finally:
        await worker.close()
    verdict = await _verified(db)
    assert verdict.first_bad_id is None and verdict.unsealed == 0


@pg_only
async def test_the_cursor_of_now_is_past_a_change_committed_but_not_numbered_yet(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """A client takes the cursor of now before its full listing: a change committed before
    it asked, still waiting for its number, is in that listing, and must not come again
    after the cursor."""
    async with db.writer() as session, session.begin():
        await _record_now(session, matter.id, [1])  # committed, left for a numberer
    assert await _unnumbered(db) == [1]
    cursor = await feed_cursor(client, matter.reader)
    assert await _unnumbered(db) == []
    assert (await changes_since(client, matter.reader, cursor))[0] == []


@pg_only
async def test_a_rolled_back_transaction_leaves_no_number_behind(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    start = await feed_cursor(client, matter.reader)
    gone = db.writer()
    await gone.begin()
    await _record_now(gone, matter.id, [1])
    async with db.write() as kept:
        events.emit(kept, events.FolderCreated(project_id=matter.id, folder_id=2))
    await gone.rollback()
    await gone.close()
    async with db.write() as after:
        events.emit(after, events.FolderCreated(project_id=matter.id, folder_id=3))
    read, _ = await changes_since(client, matter.reader, start)
    assert _marks(read) == [2, 3]
    assert int(read[1]["seq"]) == int(read[0]["seq"]) + 1


@pg_only
async def test_the_numberers_function_takes_the_numberers_lock(db: Database) -> None:
    async with db.read() as session:
        source = await session.scalar(
            text("SELECT prosrc FROM pg_proc WHERE proname = 'casefolio_number_changes'")
        )
    assert f"pg_advisory_xact_lock({sealing.NUMBER_LOCK})" in str(source)


async def _numbered_by_their_writer(db: Database) -> set[int]:
    async with db.read() as session:
        return set((await session.scalars(_NUMBERED_BY_THEIR_WRITER)).all())


async def _unnumbered(db: Database) -> list[int]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(Change.folder_id).where(Change.seq.is_(None)).order_by(Change.id)
            )
        )


async def _numbers(db: Database) -> list[int]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(Change.seq).where(Change.seq.is_not(None)).order_by(Change.seq)
            )
        )


async def _number_own(session: AsyncSession) -> int:
    return await session.run_sync(lambda s: recorder.number_own(s.connection()))


async def test_writers_numbering_themselves_beside_numberers_and_other_writers_give_one_run(
    client: httpx.AsyncClient, db: Database, matter: Matter, is_postgres: bool
) -> None:
    """Writers that number their own changes at their commit, writers that leave theirs
    (rows written without the recorder's commit hook), and two numberers, all at once on
    their own connections, while a reader polls with its cursor: the numbers are one
    unbroken run, the reader gets every change once in increasing seq, and each writer's
    changes come in its order."""
    writers, per_writer = 4, 15

    async def write_and_number(w: int) -> None:
        for n in range(per_writer):
            async with db.write() as session:
                events.emit(
                    session, events.FolderCreated(project_id=matter.id, folder_id=1000 * w + n)
                )

    async def write_and_leave(w: int) -> None:
        for n in range(per_writer):
            async with db.writer() as session, session.begin():
                await _record_now(session, matter.id, [1000 * (writers + w) + n])

    async def number() -> None:
        await sealing.number_pending(db)

    seen = await _read_while_writing(
        client,
        matter,
        2 * writers * per_writer,
        beside=number,
        writing=[
            partial(f, w) for w in range(writers) for f in (write_and_number, write_and_leave)
        ],
    )
    expected = [1000 * w + n for w in range(2 * writers) for n in range(per_writer)]
    assert sorted(_marks(seen)) == expected
    numbers = _seqs(seen)
    assert numbers == sorted(set(numbers))
    for w in range(2 * writers):
        mine = [m for m in _marks(seen) if m // 1000 == w]
        assert mine == [1000 * w + n for n in range(per_writer)]
    assert await _unnumbered(db) == []
    all_numbers = await _numbers(db)
    assert all_numbers == list(range(all_numbers[0], all_numbers[0] + len(all_numbers)))
    if is_postgres:
        # Writers did number (some of) their own, and only the writers that number.
        by_writer = await _numbered_by_their_writer(db)
        assert by_writer and all(mark // 1000 < writers for mark in by_writer)
        verdict = await _verified(db)
        async with db.read() as session:
            entries = await session.scalar(select(func.count()).select_from(AuditEntry))
        assert verdict == audit.Verdict(int(entries or 0))


async def test_a_writer_on_an_idle_server_commits_its_change_numbered(
    db: Database, matter: Matter, is_postgres: bool
) -> None:
    assert await _unnumbered(db) == []
    for mark in (1, 2, 3):
        newest = max(await _numbers(db), default=0)
        async with db.write() as session:
            events.emit(session, events.FolderCreated(project_id=matter.id, folder_id=mark))
        # Nobody numbered after the commit: the change came numbered, next after the newest.
        assert await _unnumbered(db) == []
        async with db.read() as session:
            assert (
                await session.scalar(select(Change.seq).where(Change.folder_id == mark))
                == newest + 1
            )
    if is_postgres:
        assert await _numbered_by_their_writer(db) >= {1, 2, 3}


@pg_only
async def test_a_writer_finding_the_lock_taken_leaves_its_change_and_one_rolled_back_leaves_others(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    start = await feed_cursor(client, matter.reader)
    head = max(await _numbers(db), default=0)
    for mark in (1, 2):  # committed, left for the next numberer
        async with db.writer() as session, session.begin():
            await _record_now(session, matter.id, [mark])
    assert await _unnumbered(db) == [1, 2]
    numbering = db.writer()
    await numbering.begin()
    try:
        await _record_now(numbering, matter.id, [3])
        # The two committed ones and its own, in (xid, id) order after the newest.
        assert await _number_own(numbering) == 3
        numbered = await numbering.execute(
            select(Change.folder_id, Change.seq).where(Change.seq > head).order_by(Change.seq)
        )
        assert numbered.all() == [(1, head + 1), (2, head + 2), (3, head + 3)]
        # Another writer, meanwhile, does not wait for the lock: it leaves its change.
        async with db.writer() as other, other.begin():
            await _record_now(other, matter.id, [4])
            with anyio.fail_after(5):
                assert await _number_own(other) == 0
        # Nobody else sees the numbers before the numbering writer commits.
        assert await _unnumbered(db) == [1, 2, 4]
        assert max(await _numbers(db), default=0) == head
        await numbering.rollback()
    finally:
        await numbering.close()
    # Its numbers went with it; the others are still there to be numbered.
    assert await _unnumbered(db) == [1, 2, 4]
    assert max(await _numbers(db), default=0) == head
    read, _ = await changes_since(client, matter.reader, start)  # the reader numbers first
    assert _marks(read) == [1, 2, 4]
    assert _seqs(read) == [head + 1, head + 2, head + 3]
    assert await _unnumbered(db) == []


async def test_a_long_poll_woken_by_a_write_on_an_idle_server_finds_it_numbered(
    client: httpx.AsyncClient, db: Database, matter: Matter, is_postgres: bool
) -> None:
    cursor = await feed_cursor(client, matter.reader)
    answer: list[httpx.Response] = []

    async def long_poll() -> None:
        answer.append(
            await client.get(
                "/api/v1/changes",
                params={"cursor": cursor, "wait": 30},
                headers=matter.reader.headers,
            )
        )

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(long_poll)
            while not signal.waiting:  # it read an empty feed and waits for a commit
                await anyio.lowlevel.checkpoint()
            async with db.write() as session:
                events.emit(session, events.FolderCreated(project_id=matter.id, folder_id=7))
    assert answer[0].status_code == 200, answer[0].text
    assert _marks(answer[0].json()["changes"]) == [7]
    if is_postgres:
        # Numbered by the writing transaction itself, not by the long-poll that answered.
        assert await _numbered_by_their_writer(db) == {7}
