"""`casefolio worker`: deliver webhooks (and trim the change feed) outside the servers."""

from __future__ import annotations

import signal

import anyio
import typer
from anyio.abc import TaskStatus

from casefolio.cli._common import console, load_settings, run
from casefolio.config import Settings
from casefolio.db import migrate
from casefolio.db.engine import Database
from casefolio.outbound import housekeeping, runtime
from casefolio.outbound.worker import Worker
from casefolio.storage import open_blob_store


def register(app: typer.Typer) -> None:
    app.command(name="worker")(worker_command)


def worker_command() -> None:
    """Deliver webhooks until stopped. Several may run against PostgreSQL; they share the
    outbox without taking the same delivery twice."""
    settings = load_settings()

    async def work() -> None:
        await migrate.upgrade_async(settings)
        with migrate.serving(settings):  # held until it stops: no migration under it
            await _deliver(settings)

    run(work)


async def _deliver(settings: Settings) -> None:
    db = Database.open(settings)
    worker = Worker(settings, db)
    blobs = open_blob_store(settings)
    try:
        async with (
            runtime.pg_listener(settings),
            housekeeping.running(settings, db, blobs),
            anyio.create_task_group() as tasks,
        ):
            # Listening before the first round: on SQLite a round may claim deliveries
            # before it first yields to the event loop, and a SIGTERM in between ended the
            # process where it stood, holding them.
            await tasks.start(_stop_on_signal, tasks.cancel_scope)
            console.print("casefolio worker: delivering webhooks (Ctrl-C stops).")
            await worker.run()
    finally:
        await worker.close()
        await blobs.close()
        await db.close()


async def _stop_on_signal(
    scope: anyio.CancelScope, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """SIGTERM (a service manager's stop) and SIGINT stop the worker as a cancellation, so
    that it stores the answers it has and lets go of the deliveries it holds (`Worker.run`);
    SIGTERM ended the process where it stood, and they waited for their leases to run out."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            scope.cancel()
            return
