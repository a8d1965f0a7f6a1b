"""Two requests at once on PostgreSQL, in an order the test chooses: the first holds its
transaction open while the second (a real request) reads the same rows and then waits for
the first's row lock; the test commits the first and sees what the second answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database

_WAITING = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def until_a_backend_waits_on_a_lock(db: Database) -> None:
    """Return once a backend of this database waits for a lock."""
    await until_backends_wait_on_locks(db, 1)


async def until_backends_wait_on_locks(db: Database, count: int) -> None:
    """Return once `count` backends of this database wait for a lock."""
    with anyio.fail_after(30):
        while True:
            async with db.read() as session:
                if (await session.scalar(_WAITING) or 0) >= count:
                    return
            await anyio.sleep(0.01)


async def _answer_into(
    answers: list[httpx.Response], request: Callable[[], Awaitable[httpx.Response]]
) -> None:
    answers.append(await request())


async def second_after_first(
    db: Database,
    first: Callable[[AsyncSession], Awaitable[object]],
    second: Callable[[], Awaitable[httpx.Response]],
) -> httpx.Response:
    """Run `first` in an open write transaction, send `second` (which must come to wait for
    a row lock `first` holds), commit `first`, and return the second's answer."""
    answers: list[httpx.Response] = []
    session = db.writer()
    await session.begin()
    try:
        await first(session)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_answer_into, answers, second)
            await until_a_backend_waits_on_a_lock(db)
            await session.commit()
    finally:
        await session.close()
    return answers[0]
