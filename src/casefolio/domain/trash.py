"""The trash: deleted documents and versions wait here, restorable, until the purge.

A document's DELETE (`delete` below) sets its `trashed_at`; its row, versions and field
values stay, and `db.live.LIVE` keeps it out of every read, so to every caller it is gone
(404, out of lists, counts and syncs; the change feed reported `document.deleted`). A
Project Admin may list the trash and restore a document (same id, versions and fields)
until the purge, which removes documents trashed longer than `CASEFOLIO_TRASH_DAYS` ago,
rows and then the bytes no other version shares, never a document a hold covers
(domain/purge.py).

A version's DELETE (domain/versions.py) sets the version's own `trashed_at` the same way
(`db.live.LIVE_VERSION` keeps it out of version reads and search; the newest live version
becomes current). It is listed apart (`list_versions_page`), restored by id
(`restore_version`: the document's current version is the newest live one again) and
purged after the same period, never while a hold covers its document. Rows stay until the
purge, so `casefolio gc`, which only removes bytes no row refers to, never reaches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.live import LIVE
from casefolio.db.models import Document, DocumentVersion, Folder
from casefolio.db.stamps import stamp
from casefolio.db.types import rfc3339, utcnow
from casefolio.domain import access, documents, events, filing, holds
from casefolio.domain.errors import NotFound
from casefolio.domain.pages import Page, PageRequest, fetch_page, fetch_row_page
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability


async def delete(
    session: AsyncSession, *, who: Principal, project_id: int, document_id: int
) -> None:
    """Move a document to the trash (domain/trash.py): from now on every read answers as if
    it were gone, and the change feed reports its deletion; a Project Admin may restore it
    until the trash is purged. A document under a legal hold is refused (Held, a 409)."""
    _, document = await documents.load_scoped(
        session,
        who,
        document_id,
        Capability.DOCUMENTS_DELETE,
        project_id=project_id,
        message="You do not have permission to delete this file",
        lock=True,
    )
    await holds.refuse_if_held(
        session,
        project_id=document.project_id,
        what=f"document {document_id}",
        document_ids=[document_id],
        details={"documentId": document_id},
    )
    # Only a document still live: a concurrent DELETE that got there first (PostgreSQL
    # re-checks the condition once its transaction ends) leaves this one nothing to move, so
    # one deletion is reported once.
    taken = await session.execute(
        update(Document)
        .where(Document.id == document_id, LIVE)
        .values(trashed_at=utcnow())
        .returning(Document.folder_id)
    )
    row = taken.first()
    if row is None:
        raise NotFound(f"Document {document_id} not found.")
    events.emit(session, trashed_event(document.project_id, document_id, row.folder_id))


def trashed_event(
    project_id: int, document_id: int, folder_id: int | None, **details: object
) -> events.DomainEvent:
    """What a document's move to the trash reports, by a DELETE or by retention: a deletion
    (`document.deleted` in the change feed and to webhooks), audited as one the trash can
    undo."""
    return events.DocumentDeleted(
        project_id=project_id,
        document_id=document_id,
        folder_id=folder_id,
        details={"trash": True, **details},
    )


async def list_page(
    session: AsyncSession, *, who: Principal, project_id: int, page: PageRequest
) -> Page[Document]:
    """The project's trashed documents, most recently trashed last (by trashedAt, id)."""
    await access.scope(session, who, project_id, Capability.DOCUMENTS_DELETE)
    stmt = select(Document).where(
        Document.project_id == project_id, Document.trashed_at.isnot(None)
    )
    return await fetch_page(
        session,
        stmt,
        key=[Document.trashed_at, Document.id],
        page=page,
        key_of=lambda d: (d.trashed_at, d.id),
    )


async def restore(
    session: AsyncSession, *, who: Principal, project_id: int, document_id: int
) -> Document:
    """Take a document out of the trash: the same id, versions and field values, back
    where it was (its folder, or the project root if the folder was deleted meanwhile).
    Its updatedAt becomes now, so an afterDate sync sees it again."""
    await _may_restore(session, who, project_id)
    document = await session.get(Document, document_id)
    if document is None or document.project_id != project_id or document.trashed_at is None:
        raise NotFound(f"Document {document_id} is not in the trash of project {project_id}.")
    trashed_at = document.trashed_at
    if document.folder_id is not None:
        # Its folder may not be deleted meanwhile (folders.delete locks it first, then looks
        # for documents): either that deletion waits and then finds this one, or this
        # waits and finds the document moved to the root, as the deletion left it.
        await session.execute(
            select(Folder.id)
            .where(Folder.id == document.folder_id)
            .with_for_update(read=True, key_share=True)
        )
    # Only a document still in the trash: a concurrent restore (or purge) that got there
    # first leaves this one nothing to restore.
    taken = await session.execute(
        update(Document)
        .where(Document.id == document_id, Document.trashed_at.isnot(None))
        .values(trashed_at=None, updated_at=await stamp(session))
        .returning(Document.folder_id)
    )
    row = taken.first()
    if row is None:
        raise NotFound(f"Document {document_id} is not in the trash of project {project_id}.")
    events.emit(
        session,
        events.DocumentRestored(
            project_id=project_id,
            document_id=document_id,
            folder_id=row.folder_id,
            details={"trashedAt": rfc3339(trashed_at)},
        ),
    )
    # As the database has it: its folder may have been deleted while this one waited.
    return await session.get_one(Document, document_id, populate_existing=True)


@dataclass(frozen=True)
class TrashedVersion:
    version: DocumentVersion
    document_title: str


async def list_versions_page(
    session: AsyncSession, *, who: Principal, project_id: int, page: PageRequest
) -> Page[TrashedVersion]:
    """The trashed versions of the project's documents that are not in the trash
    themselves (a trashed document's versions come back with it), by (trashedAt, id)."""
    await access.scope(session, who, project_id, Capability.DOCUMENTS_DELETE)
    stmt = cast(
        "Select[Any]",
        select(DocumentVersion, Document.title)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(Document.project_id == project_id, LIVE, DocumentVersion.trashed_at.isnot(None)),
    )

    def make(row: Row[Any]) -> TrashedVersion:
        return TrashedVersion(row.DocumentVersion, row.title)

    return await fetch_row_page(
        session,
        stmt,
        key=[DocumentVersion.trashed_at, DocumentVersion.id],
        page=page,
        make=make,
        key_of=lambda t: (t.version.trashed_at, t.version.id),
    )


async def _may_restore(session: AsyncSession, who: Principal, project_id: int) -> None:
    """Who may take documents and versions out of the trash: those who may delete them."""
    await access.scope(
        session,
        who,
        project_id,
        Capability.DOCUMENTS_DELETE,
        message="You do not have permission to restore this file",
    )


async def restore_version(
    session: AsyncSession, *, who: Principal, project_id: int, version_id: int
) -> DocumentVersion:
    """Take a version out of the trash, same id and bytes; the document's current version
    becomes its newest live one again (this one, if it is the newest), and its updatedAt
    now. NotFound unless the version is in the trash of a document of the project that is
    not in the trash itself (restore that first)."""
    await _may_restore(session, who, project_id)
    missing = NotFound(f"Version {version_id} is not in the trash of project {project_id}.")
    version = await session.get(DocumentVersion, version_id)
    if version is None or version.document_id is None or version.trashed_at is None:
        raise missing
    document_id, trashed_at = version.document_id, version.trashed_at
    # Lock the document row first (as a version delete does), then take only a trashed row:
    # a purge or a second restore that got there first leaves nothing to restore.
    locked = await session.execute(
        update(Document)
        .where(Document.id == document_id, Document.project_id == project_id, LIVE)
        .values(updated_at=await stamp(session))
    )
    if locked.rowcount != 1:  # type: ignore[attr-defined]
        raise missing
    taken = await session.execute(
        update(DocumentVersion)
        .where(DocumentVersion.id == version_id, DocumentVersion.trashed_at.isnot(None))
        .values(trashed_at=None)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise missing
    await filing.set_current(session, document_id=document_id)
    events.emit(
        session,
        events.VersionRestored(
            project_id=project_id,
            document_id=document_id,
            version_id=version_id,
            details={"number": version.number, "trashedAt": rfc3339(trashed_at)},
        ),
    )
    return await session.get_one(DocumentVersion, version_id, populate_existing=True)


def expires_at(trashed: Document | DocumentVersion, days: float) -> datetime | None:
    """When the purge may remove a trashed document or version (None: not in the trash)."""
    if trashed.trashed_at is None:
        return None
    return trashed.trashed_at + timedelta(days=days)
