"""What a server process runs beside its requests: the cross-process wake-up of long-polls
(PostgreSQL LISTEN) and, unless switched off, the webhook worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import make_url

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.outbound import housekeeping, leader
from casefolio.outbound.signal import CHANNEL, outgoing, signal
from casefolio.storage.base import BlobStore

log = logging.getLogger(__name__)


#: Sent by this process's notifier, on the LISTEN connection (outside any transaction).
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"
#: After a NOTIFY, the notifier lets this long pass before the next: a commit on an idle
#: server is announced at once, and under load the commits of the gap share one NOTIFY
#: (each wakes every process's listener and worker).
NOTIFY_GAP_SECONDS = 0.01


def _wake(own_pid: int, _conn: Any, pid: int, *_: Any) -> None:
    if pid != own_pid:  # this process's own commits woke it already (recorder.py)
        signal.changed()


@asynccontextmanager
async def pg_listener(settings: Settings) -> AsyncIterator[None]:
    """While open, a NOTIFY from any process's commit (recorder.py) wakes this process's
    long-polls and worker, and this process's commits are announced to the others by one
    notifier on the same connection (signal.Outgoing).

    The listening connection lives in a task of its own and is opened again after a loss;
    it never holds up start-up or shutdown (a silent server is waited for at most briefly),
    and while it is down, long-polls still look at the outbox every second.
    """
    if settings.is_sqlite:
        yield
        return
    url = make_url(settings.effective_database_url).set(drivername="postgresql")
    dsn = url.render_as_string(hide_password=False)
    listening = anyio.Event()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_listen, dsn, settings.database_statement_timeout_seconds, listening)
        with anyio.move_on_after(LISTEN_READY_SECONDS):
            await listening.wait()
        try:
            yield
        finally:
            tasks.cancel_scope.cancel()


LISTEN_READY_SECONDS = 2.0
RELISTEN_SECONDS = 5.0
#: How an operator tells the listening connection apart in pg_stat_activity.
LISTENER_NAME = "casefolio-listener"


async def _listen(dsn: str, wait_limit: float, listening: anyio.Event) -> None:
    while True:
        conn: Any = None
        try:
            conn = await asyncpg.connect(
                dsn,
                timeout=wait_limit,
                command_timeout=wait_limit,
                server_settings={"application_name": LISTENER_NAME},
            )
            lost = anyio.Event()
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            await conn.add_listener(CHANNEL, partial(_wake, conn.get_server_pid()))
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_notify, conn, lost)
                listening.set()
                signal.changed()  # anything committed while not listening is looked at now
                await lost.wait()
                tasks.cancel_scope.cancel()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # InterfaceError: the connection went between connecting and listening.
            log.warning("change notifications unavailable (%s); retrying", exc)
        finally:
            if conn is not None:
                conn.terminate()  # no goodbye to wait for from a server that went silent
        await anyio.sleep(RELISTEN_SECONDS)


async def _notify(
    conn: Any, lost: anyio.Event, pause: Callable[[float], Awaitable[None]] = anyio.sleep
) -> None:
    """Announce this process's commits: one NOTIFY for all those marked since the last
    (they are all committed before it), at most one per NOTIFY_GAP_SECONDS, so that under
    load a process sends far fewer than it commits, and no request waits for one."""
    pending = asyncio.Event()
    outgoing.attach(pending)
    try:
        while True:
            await pending.wait()
            pending.clear()
            await conn.execute(_NOTIFY)
            await pause(NOTIFY_GAP_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # Committers notify for themselves until the connection is back; a commit marked
        # here meanwhile is found by the long-polls' one-second re-check.
        log.warning("could not notify other processes (%s); reconnecting", exc)
        lost.set()
    finally:
        outgoing.detach(pending)


@asynccontextmanager
async def background(
    settings: Settings, db: Database, *, run_worker: bool, blobs: BlobStore | None = None
) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(pg_listener(settings))
        if run_worker:
            # In one server process per data folder (leader.py).
            work = partial(_worker_and_housekeeping, settings, db, blobs)
            await stack.enter_async_context(
                leader.elected(settings.data_dir, work, sqlite=settings.is_sqlite)
            )
        yield


@asynccontextmanager
async def _worker_and_housekeeping(
    settings: Settings, db: Database, blobs: BlobStore | None
) -> AsyncIterator[None]:
    from casefolio.outbound.worker import running_worker

    async with running_worker(settings, db):
        if blobs is None:
            yield
            return
        async with housekeeping.running(settings, db, blobs):  # the trash's purge, retention
            yield
