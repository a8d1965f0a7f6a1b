"""The feed's numbers on PostgreSQL, whose writers do not take turns: a change is numbered
after its commit by the sealers (sealing.py), so `seq` grows in the order changes become
readable, whatever order their transactions began in, and a reader's cursor never misses
one. Real connections, committing in orders of the test's choosing."""

from __future__ import annotations

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
from casefolio.outbound.worker import Worker
from tests.outbound.conftest import Matter
from tests.outbound.test_feed import _changes, _cursor

pytestmark = pytest.mark.usefixtures("postgres_only")


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


async def test_writers_committing_out_of_their_start_order_are_read_in_commit_order_once(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    start_order = range(6)
    commit_order = [3, 0, 5, 1, 4, 2]
    cursor = await _cursor(client, matter.reader)
    writers: list[AsyncSession] = []
    for w in start_order:
        session = db.writer()
        await session.begin()
        await _record_now(session, matter.id, [10 * w + 1, 10 * w + 2])
        writers.append(session)
    seen: list[dict[str, Any]] = []
    try:
        page, cursor = await _changes(client, matter.reader, cursor)
        assert page == []  # nothing has committed
        for w in commit_order:
            await writers[w].commit()
            # The reader numbers what has committed before it reads: no worker needed.
            page, cursor = await _changes(client, matter.reader, cursor)
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


async def test_concurrent_writers_and_sealers_give_a_polling_reader_every_change_once(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """Writers commit at once on their own connections, two sealers run beside them (as
    several server processes' workers would) and a reader polls with its cursor until it has
    every change: it gets each exactly once, in increasing seq."""
    writers, per_writer = 4, 15
    total = writers * per_writer
    cursor = await _cursor(client, matter.reader)
    written = anyio.Event()
    seen: list[dict[str, Any]] = []

    async def write(w: int) -> None:
        for n in range(per_writer):
            async with db.write() as session:
                events.emit(
                    session, events.FolderCreated(project_id=matter.id, folder_id=1000 * w + n)
                )

    async def seal_until_written() -> None:
        while not written.is_set():
            await sealing.number_pending(db)
            await sealing.seal_pending(db)
            await anyio.lowlevel.checkpoint()

    async def read_until_all_seen() -> None:
        nonlocal cursor
        while len(seen) < total:
            page, cursor = await _changes(client, matter.reader, cursor)
            seen.extend(page)
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(seal_until_written)
            tasks.start_soon(seal_until_written)
            tasks.start_soon(read_until_all_seen)
            async with anyio.create_task_group() as writing:
                for w in range(writers):
                    writing.start_soon(write, w)
            written.set()
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


async def test_a_long_transaction_holds_back_nobody_and_its_change_comes_after_those_read(
    client: httpx.AsyncClient, db: Database, matter: Matter, settings: Settings
) -> None:
    worker = Worker(settings, db)
    try:
        await sealing.number_pending(db)  # the worker's round does this before its fan-out
        await sealing.seal_pending(db, wait=True)
        while await worker.fan_out():
            pass
        start = await _cursor(client, matter.reader)
        older = db.writer()
        await older.begin()
        try:
            # Its rows are written first: a smaller id and transaction id than the newer's.
            await _record_now(older, matter.id, [1])
            async with db.write() as newer:
                events.emit(newer, events.FolderCreated(project_id=matter.id, folder_id=2))
            early, cursor = await _changes(client, matter.reader, start)
            assert _marks(early) == [2]  # not held back by the open transaction
            assert await worker.fan_out() == 1
            # Its audit entry waits for the older transaction (the chain's order is fixed
            # below the horizon); the feed did not.
            async with db.write() as session:
                assert await sealing.seal(session) == 0
            await older.commit()
        finally:
            await older.close()
        late, _ = await _changes(client, matter.reader, cursor)
        assert _marks(late) == [1]
        assert int(late[0]["seq"]) > int(early[0]["seq"])
        everything, _ = await _changes(client, matter.reader, start)
        assert _marks(everything) == [2, 1]
        assert await worker.fan_out() == 1
        async with db.read() as session:
            assert await feed.state(session, feed.FANNED_OUT) == int(late[0]["seq"])
    finally:
        await worker.close()
    verdict = await _verified(db)
    assert verdict.first_bad_id is None and verdict.unsealed == 0


async def test_a_rolled_back_transaction_leaves_no_number_behind(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    start = await _cursor(client, matter.reader)
    gone = db.writer()
    await gone.begin()
    await _record_now(gone, matter.id, [1])
    async with db.write() as kept:
        events.emit(kept, events.FolderCreated(project_id=matter.id, folder_id=2))
    await gone.rollback()
    await gone.close()
    async with db.write() as after:
        events.emit(after, events.FolderCreated(project_id=matter.id, folder_id=3))
    read, _ = await _changes(client, matter.reader, start)
    assert _marks(read) == [2, 3]
    assert int(read[1]["seq"]) == int(read[0]["seq"]) + 1


async def test_the_numberers_function_takes_the_numberers_lock(db: Database) -> None:
    async with db.read() as session:
        source = await session.scalar(
            text("SELECT prosrc FROM pg_proc WHERE proname = 'casefolio_number_changes'")
        )
    assert f"pg_advisory_xact_lock({sealing.NUMBER_LOCK})" in str(source)
