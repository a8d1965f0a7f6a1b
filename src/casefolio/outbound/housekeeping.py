"""Background housekeeping beside the webhook worker: the trash's purge (hourly) and the
retention rules (daily). `clock` is injectable, so tests move time instead of waiting.

Every server process that runs the worker runs this too; the purge takes its documents
with SKIP LOCKED (PostgreSQL) or under SQLite's one write lock, so two processes never
purge the same document twice."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import anyio

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.types import utcnow
from casefolio.domain import events, purge, retention
from casefolio.storage.base import BlobStore

log = logging.getLogger(__name__)
SYSTEM = events.Actor("system")
PURGE_EVERY = timedelta(hours=1)
RETENTION_EVERY = timedelta(days=1)


class Housekeeper:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        blobs: BlobStore,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings, self.db, self.blobs, self.clock = settings, db, blobs, clock
        self._last_purge: datetime | None = None
        self._last_retention: datetime | None = None

    async def run_once(self) -> list[str]:
        """Do what is due at the clock's time; return the names of the jobs that ran."""
        events.current_actor.set(SYSTEM)
        now, ran = self.clock(), []
        if self._last_purge is None or now - self._last_purge >= PURGE_EVERY:
            self._last_purge = now
            await self._purge(now)
            ran.append("purge")
        if self._last_retention is None or now - self._last_retention >= RETENTION_EVERY:
            self._last_retention = now
            trashed = await retention.apply(self.db, now=now)
            if trashed:
                log.info("retention moved %d document(s) to the trash", len(trashed))
            ran.append("retention")
        return ran

    async def _purge(self, now: datetime) -> None:
        report = await purge.purge_expired(
            self.db, self.blobs, now=now, days=self.settings.trash_days
        )
        if report.purged or report.versions_purged:
            log.info(
                "purged %d document(s) and %d version(s) from the trash",
                len(report.purged),
                len(report.versions_purged),
            )
        if report.failed or report.versions_failed:
            log.error(
                "the database refused the purge of document(s) %s and version(s) %s; they "
                "stay in the trash",
                report.failed,
                report.versions_failed,
            )

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a failed round is retried at the next; the server goes on
                log.exception("housekeeping failed")
            await anyio.sleep(60)


@asynccontextmanager
async def running(settings: Settings, db: Database, blobs: BlobStore) -> AsyncIterator[None]:
    """Housekeeping in the background of this process while the block runs."""
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(Housekeeper(settings, db, blobs).run)
        yield
        tasks.cancel_scope.cancel()
