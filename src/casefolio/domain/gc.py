"""Garbage collection: containerless uploads nobody claimed in time, blobs no version
references, and staging files nobody finished.

Staging files of stopped processes are removed at start-up already (`storage.staging`);
gc removes those older than the grace period that no running process owns.

Uploads make their blob durable *before* the row that references it commits, and
`BlobStore.put` refreshes a blob's modification time even when the bytes were already
there. So an unreferenced blob younger than the grace period may belong to an upload
in flight and is kept; an older one is an orphan (a crash, an unclaimed upload removed,
a purge that left it to gc) and is removed. A deleted document or version is in the trash
(domain/trash.py) and keeps its row until the purge, so its bytes are never orphans.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread

from casefolio.db.engine import Database
from casefolio.domain import blob_locks, unclaimed
from casefolio.domain.blob_locks import Removal
from casefolio.storage import staging
from casefolio.storage.base import BlobStore

#: Blobs checked against the database per query.
_CHUNK = 500


@dataclass(frozen=True)
class Removed:
    name: str  # a blob's sha256, or a staging file's name
    modified: datetime


@dataclass
class GcReport:
    dry_run: bool
    blobs: list[Removed] = field(default_factory=list)
    staging: list[Removed] = field(default_factory=list)
    unclaimed: list[int] = field(default_factory=list)  # ids of expired containerless uploads
    kept_referenced: int = 0
    kept_young: int = 0


async def _chunks(
    items: AsyncIterator[tuple[str, datetime]], size: int
) -> AsyncIterator[list[tuple[str, datetime]]]:
    chunk: list[tuple[str, datetime]] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _collect_blobs(
    db: Database, blobs: BlobStore, cutoff: datetime, report: GcReport
) -> None:
    async for chunk in _chunks(blobs.list(), _CHUNK):
        # Referenced first, young or not: the report counts what is kept by why it is kept.
        async with db.read() as session:
            referenced = await blob_locks.referenced_blobs(session, {sha for sha, _ in chunk})
        report.kept_referenced += len(referenced)
        unused = [(sha, modified) for sha, modified in chunk if sha not in referenced]
        old = {sha: modified for sha, modified in unused if modified < cutoff}
        report.kept_young += len(unused) - len(old)
        for sha, modified in sorted(old.items()):
            if not report.dry_run:
                # The listing can be minutes old by now: an upload may have stored these
                # very bytes again and filed a version since. Each blob is looked at again,
                # and deleted, taking its turn with filings (blob_locks).
                outcome = await blob_locks.remove_unless_used(db, blobs, sha, stored_before=cutoff)
                if outcome is Removal.REFERENCED:
                    report.kept_referenced += 1
                if outcome is Removal.YOUNG:
                    report.kept_young += 1
                if outcome is not Removal.REMOVED:
                    continue
            report.blobs.append(Removed(sha, modified))


def _stale_staging(staging_dir: Path, cutoff: datetime, dry_run: bool) -> list[Removed]:
    removed: list[Removed] = []
    try:
        entries = list(os.scandir(staging_dir))
    except FileNotFoundError:
        return removed
    for entry in sorted(entries, key=lambda e: e.name):
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            modified = datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, tz=UTC)
            # A running process's upload is kept however long it takes.
            if modified >= cutoff or staging.is_owned(staging_dir, entry.name):
                continue
            if not dry_run:
                os.unlink(entry.path)
        except FileNotFoundError:
            continue  # finished (renamed into place) or removed meanwhile
        removed.append(Removed(entry.name, modified))
    return removed


async def collect(
    db: Database,
    blobs: BlobStore,
    *,
    grace: timedelta,
    unclaimed_for: timedelta | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> GcReport:
    """Remove containerless uploads unclaimed for longer than `unclaimed_for` (None keeps
    them), then unreferenced blobs and staging files older than `grace`; return what went.

    With `dry_run` nothing is deleted and the report lists what would have been.
    """
    now = now or datetime.now(UTC)
    cutoff = now - grace
    report = GcReport(dry_run=dry_run)
    if unclaimed_for is not None:
        # First, so the blobs only these uploads held are collected in the same run.
        async with db.write() as session:
            report.unclaimed = await unclaimed.remove_expired(
                session, before=now - unclaimed_for, dry_run=dry_run
            )
    await _collect_blobs(db, blobs, cutoff, report)
    report.staging = await anyio.to_thread.run_sync(
        _stale_staging, blobs.staging_dir, cutoff, dry_run
    )
    return report
