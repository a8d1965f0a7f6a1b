"""The purge: what has been in the trash longer than `CASEFOLIO_TRASH_DAYS` goes for good.

Documents first, then versions, each in short transactions of `_BATCH`, never what a hold
covers (a version: a hold covering its document); then the bytes of what was removed that
no other version shares. How things reach the trash, and leave it by a restore, is
domain/trash.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete as delete_rows
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database
from casefolio.db.models import Document, DocumentVersion
from casefolio.db.types import rfc3339
from casefolio.domain import blob_locks, events, holds
from casefolio.domain.blob_locks import Removal
from casefolio.storage.base import BlobStore

#: Documents purged per transaction: a long trash is purged in several short ones.
_BATCH = 200
T = TypeVar("T")


@dataclass
class PurgeReport:
    purged: list[int] = field(default_factory=list)  # document ids
    kept_held: list[int] = field(default_factory=list)
    versions_purged: list[int] = field(default_factory=list)  # version ids
    versions_kept_held: list[int] = field(default_factory=list)
    blobs_removed: list[str] = field(default_factory=list)
    blobs_shared: int = 0
    blobs_left_to_gc: int = 0


async def purge_expired(
    db: Database,
    blobs: BlobStore,
    *,
    now: datetime,
    days: float,
    grace: timedelta = timedelta(hours=1),
) -> PurgeReport:
    """Remove documents trashed more than `days` before `now`, with their versions and
    field values, then versions trashed as long ago, except those a hold covers (a
    version: a hold covering its document); then the bytes of what was removed that no
    other version (live, trashed or held) shares. Each purge is audited and in the
    change feed.

    A blob modified within `grace` before `now` is left to `casefolio gc`: an upload of
    the same bytes may be on its way to a row that will need them (gc.py explains)."""
    report = PurgeReport()
    cutoff = now - timedelta(days=days)
    after = 0
    while True:
        async with db.write() as session:
            candidates = list(
                await session.scalars(
                    select(Document)
                    .where(Document.trashed_at < cutoff, Document.id > after)
                    .order_by(Document.id)
                    .limit(_BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            if not candidates:
                break
            after = candidates[-1].id
            doomed, kept = await _split_held(
                session, candidates, project_of=lambda d: d.project_id, document_of=lambda d: d.id
            )
            report.kept_held += [d.id for d in kept]
            shas = await _purge(session, doomed, report)
        # After the commit: bytes go only once no row can point at them any more.
        await _remove_unshared(db, blobs, shas, report, now - grace)
    await _purge_versions(db, blobs, cutoff, report, now - grace)
    return report


async def _purge_versions(
    db: Database, blobs: BlobStore, cutoff: datetime, report: PurgeReport, young: datetime
) -> None:
    after = 0
    while True:
        async with db.write() as session:
            candidates = list(
                await session.execute(
                    select(DocumentVersion, Document.project_id)
                    .join(Document, Document.id == DocumentVersion.document_id)
                    .where(DocumentVersion.trashed_at < cutoff, DocumentVersion.id > after)
                    .order_by(DocumentVersion.id)
                    .limit(_BATCH)
                    .with_for_update(of=DocumentVersion, skip_locked=True)
                )
            )
            if not candidates:
                break
            after = candidates[-1][0].id
            doomed, kept = await _split_held(
                session,
                [(version, project_id) for version, project_id in candidates],
                project_of=lambda c: c[1],
                document_of=lambda c: c[0].document_id,
            )
            report.versions_kept_held += [v.id for v, _ in kept]
            shas = {v.sha256 for v, _ in doomed}
            purged = [
                events.VersionPurged(
                    project_id=project_id,
                    document_id=v.document_id,
                    version_id=v.id,
                    details={
                        "number": v.number,
                        "trashedAt": rfc3339(t) if (t := v.trashed_at) else None,
                    },
                )
                for v, project_id in doomed
            ]
            if purged:
                ids = [v.id for v, _ in doomed]
                # Its extracted text goes with it (ON DELETE CASCADE).
                await session.execute(
                    delete_rows(DocumentVersion).where(DocumentVersion.id.in_(ids))
                )
                events.emit(session, *purged)
                report.versions_purged += ids
        await _remove_unshared(db, blobs, shas, report, young)


async def _split_held(
    session: AsyncSession,
    found: Sequence[T],
    *,
    project_of: Callable[[T], int],
    document_of: Callable[[T], int | None],
) -> tuple[list[T], list[T]]:
    """Given trashed documents or versions due for the purge, return (those no hold covers,
    those a hold covers: of a version, a hold covering its document), asking the holds of
    each project once."""
    by_project: dict[int, list[T]] = {}
    for item in found:
        by_project.setdefault(project_of(item), []).append(item)
    free: list[T] = []
    held: list[T] = []
    for project_id, items in by_project.items():
        covered = await holds.covered_documents(
            session,
            project_id=project_id,
            document_ids=[d for item in items if (d := document_of(item)) is not None],
        )
        for item in items:
            (held if document_of(item) in covered else free).append(item)
    return free, held


async def _purge(session: AsyncSession, doomed: list[Document], report: PurgeReport) -> set[str]:
    """Delete these documents; return the contents their versions had."""
    if not doomed:
        return set()
    ids = [d.id for d in doomed]
    shas = set(
        await session.scalars(
            select(DocumentVersion.sha256).where(DocumentVersion.document_id.in_(ids))
        )
    )
    # Versions and field values go with their document (ON DELETE CASCADE).
    await session.execute(delete_rows(Document).where(Document.id.in_(ids)))
    for document in doomed:
        events.emit(
            session,
            events.DocumentPurged(
                project_id=document.project_id,
                document_id=document.id,
                folder_id=document.folder_id,
                details={
                    "trashedAt": rfc3339(trashed) if (trashed := document.trashed_at) else None
                },
            ),
        )
    report.purged += ids
    return shas


async def _remove_unshared(
    db: Database, blobs: BlobStore, shas: set[str], report: PurgeReport, young: datetime
) -> None:
    if not shas:
        return
    async with db.read() as session:
        shared = await blob_locks.referenced_blobs(session, shas)
    report.blobs_shared += len(shared)
    for sha in sorted(shas - shared):
        # Looked at again, and deleted, taking its turn with filings (blob_locks): an upload
        # of the same bytes may have been filed since.
        outcome = await blob_locks.remove_unless_used(db, blobs, sha, stored_before=young)
        if outcome is Removal.REFERENCED:
            report.blobs_shared += 1
        elif outcome is Removal.YOUNG:
            report.blobs_left_to_gc += 1
        elif outcome is Removal.REMOVED:
            report.blobs_removed.append(sha)
