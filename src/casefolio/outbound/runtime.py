"""What a server process runs beside its requests: the cross-process wake-up of long-polls
(PostgreSQL LISTEN) and, unless switched off, the webhook worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import make_url

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.outbound.signal import CHANNEL, signal


def _wake(*_: Any) -> None:
    signal.changed()


@asynccontextmanager
async def pg_listener(settings: Settings) -> AsyncIterator[None]:
    """While open, a NOTIFY from any process's commit (recorder.py) wakes this process's
    long-polls and worker."""
    if settings.is_sqlite:
        yield
        return
    url = make_url(settings.effective_database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await conn.add_listener(CHANNEL, _wake)
        yield
    finally:
        await conn.close()


@asynccontextmanager
async def background(settings: Settings, db: Database, *, run_worker: bool) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(pg_listener(settings))
        if run_worker:
            from casefolio.outbound.worker import running_worker

            await stack.enter_async_context(running_worker(settings, db))
        yield
