"""The purge: what has been in the trash longer than `CASEFOLIO_TRASH_DAYS` goes for good.

Documents first, then versions, each in short transactions of `_BATCH`, never what a hold
covers (a version: a hold covering its document); then the bytes of what was removed that
no other version shares. How things reach the trash, and leave it by a restore, is
domain/trash.py.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
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
from casefolio.domain.failures import passing
from casefolio.storage.base import BlobStore

log = logging.getLogger(__name__)
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
    #: Documents and versions the database refused to purge: they stay in the trash.
    failed: list[int] = field(default_factory=list)
    versions_failed: list[int] = field(default_factory=list)


@dataclass
class _Taken:
    """What one transaction of the purge removed and kept."""

    purged: list[int] = field(default_factory=list)
    kept_held: list[int] = field(default_factory=list)
    shas: set[str] = field(default_factory=set)
    failed: list[int] = field(default_factory=list)


#: Given a write session and the ids of trashed documents or versions due, purge those
#: still due and not held.
_Purge = Callable[[AsyncSession, list[int]], Awaitable[_Taken]]
#: Given a read session and an id, the ids of up to _BATCH due after it, in order.
_Due = Callable[[AsyncSession, int], Awaitable[list[int]]]


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
    change feed. One the database refuses is left in the trash (`report.failed`), and
    the others go.

    A blob modified within `grace` before `now` is left to `casefolio gc`: an upload of
    the same bytes may be on its way to a row that will need them (gc.py explains)."""
    report = PurgeReport()
    cutoff = now - timedelta(days=days)
    young = now - grace

    async def purge_documents(session: AsyncSession, ids: list[int]) -> _Taken:
        await holds.lock_against_new_holds(
            session, select(Document.project_id).where(Document.id.in_(ids))
        )
        candidates = list(
            await session.scalars(
                select(Document)
                .where(Document.trashed_at < cutoff, Document.id.in_(ids))
                .order_by(Document.id)
                .with_for_update(skip_locked=True)
            )
        )
        doomed, kept = await _split_held(
            session, candidates, project_of=lambda d: d.project_id, document_of=lambda d: d.id
        )
        return _Taken([d.id for d in doomed], [d.id for d in kept], await _purge(session, doomed))

    async def purge_versions(session: AsyncSession, ids: list[int]) -> _Taken:
        return await _purge_versions(session, cutoff, ids)

    due_documents, due_versions = _due(Document, cutoff), _due(DocumentVersion, cutoff)
    documents = await _sweep(db, blobs, report, young, due_documents, purge_documents, "document")
    report.purged += documents.purged
    report.kept_held += documents.kept_held
    report.failed += documents.failed
    versions = await _sweep(db, blobs, report, young, due_versions, purge_versions, "version")
    report.versions_purged += versions.purged
    report.versions_kept_held += versions.kept_held
    report.versions_failed += versions.failed
    return report


def _due(trashed: type[Document] | type[DocumentVersion], cutoff: datetime) -> _Due:
    """Given a table of trashed rows, the ids of up to _BATCH trashed before `cutoff`, after
    a given id, in order."""

    async def due(session: AsyncSession, after: int) -> list[int]:
        return list(
            await session.scalars(
                select(trashed.id)
                .where(trashed.trashed_at < cutoff, trashed.id > after)
                .order_by(trashed.id)
                .limit(_BATCH)
            )
        )

    return due


async def _sweep(
    db: Database,
    blobs: BlobStore,
    report: PurgeReport,
    young: datetime,
    due: _Due,
    purge: _Purge,
    what: str,
) -> _Taken:
    """Purge what `due` names, _BATCH in a transaction; return what went and what was kept.
    A batch the database refuses is purged one by one, and what it refuses alone stays."""
    done = _Taken()
    after = 0
    while True:
        async with db.read() as session:
            ids = await due(session, after)
        if not ids:
            return done
        after = ids[-1]
        try:
            async with db.write() as session:
                taken = [await purge(session, ids)]
        except Exception as exc:
            if passing(exc):
                raise
            # Left as it is, the batch would fail again at every purge, and with it every
            # later one and, in the housekeeper's round, the retention job.
            log.error("purging %d %ss failed (%s); purging each apart", len(ids), what, exc)
            taken = await _apart(db, ids, purge, done, what)
        for each in taken:
            done.purged += each.purged
            done.kept_held += each.kept_held
            # After the commit: bytes go only once no row can point at them any more.
            await _remove_unshared(db, blobs, each.shas, report, young)


async def _apart(
    db: Database, ids: list[int], purge: _Purge, done: _Taken, what: str
) -> list[_Taken]:
    taken = []
    for one in ids:
        try:
            async with db.write() as session:
                taken.append(await purge(session, [one]))
        except Exception as exc:
            if passing(exc):
                raise
            log.exception("%s %d cannot be purged; it stays in the trash", what, one)
            done.failed.append(one)
    return taken


async def _purge_versions(session: AsyncSession, cutoff: datetime, ids: list[int]) -> _Taken:
    await holds.lock_against_new_holds(
        session,
        select(Document.project_id)
        .join(DocumentVersion, DocumentVersion.document_id == Document.id)
        .where(DocumentVersion.id.in_(ids)),
    )
    candidates = list(
        await session.execute(
            select(DocumentVersion, Document.project_id)
            .join(Document, Document.id == DocumentVersion.document_id)
            .where(DocumentVersion.trashed_at < cutoff, DocumentVersion.id.in_(ids))
            .order_by(DocumentVersion.id)
            .with_for_update(of=DocumentVersion, skip_locked=True)
        )
    )
    doomed, kept = await _split_held(
        session,
        [(version, project_id) for version, project_id in candidates],
        project_of=lambda c: c[1],
        document_of=lambda c: c[0].document_id,
    )
    taken = _Taken(
        [v.id for v, _ in doomed], [v.id for v, _ in kept], {v.sha256 for v, _ in doomed}
    )
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
        # Its extracted text goes with it (ON DELETE CASCADE).
        await session.execute(
            delete_rows(DocumentVersion).where(DocumentVersion.id.in_(taken.purged))
        )
        events.emit(session, *purged)
    return taken


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


async def _purge(session: AsyncSession, doomed: list[Document]) -> set[str]:
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
