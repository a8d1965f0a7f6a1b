"""Document versions (OpenProject's attachments): list, read, delete, and what to download.

A deleted version goes to the trash (domain/trash.py): its row stays with `trashed_at` set,
and every read here leaves it out (`LIVE_VERSION`), so to a caller it is gone."""

from __future__ import annotations

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.live import LIVE_VERSION
from casefolio.db.models import Document, DocumentVersion, Project
from casefolio.db.stamps import stamp
from casefolio.domain import access, documents, events, filing, holds
from casefolio.domain.errors import Conflict, Invalid, NotFound
from casefolio.domain.pages import Page, PageRequest, fetch_page
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability

VERSION_NOT_FOUND = "Document version not found"
DELETE_FORBIDDEN = "You do not have permission to delete this file"


def parse_version_id(raw: str) -> int:
    """Given a version id from a URL, return it as an int or raise the seed's 400."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
        raise Invalid("Invalid version ID format", [{"field": "versionId", "message": raw[:40]}])
    return int(raw)


async def _readable_versions(
    session: AsyncSession, who: Principal, document_id: int, project_id: int | None
) -> Select[DocumentVersion]:
    """The select of a document's versions, once the caller may read the document."""
    await documents.load_scoped(
        session, who, document_id, Capability.DOCUMENTS_READ, project_id=project_id
    )
    return select(DocumentVersion).where(DocumentVersion.document_id == document_id, LIVE_VERSION)


async def list_all(
    session: AsyncSession, *, who: Principal, document_id: int, project_id: int | None = None
) -> list[DocumentVersion]:
    stmt = await _readable_versions(session, who, document_id, project_id)
    return list(await session.scalars(stmt.order_by(DocumentVersion.number)))


async def list_page(
    session: AsyncSession, *, who: Principal, document_id: int, project_id: int, page: PageRequest
) -> Page[DocumentVersion]:
    """A document's versions, oldest first, a page at a time."""
    stmt = await _readable_versions(session, who, document_id, project_id)
    return await fetch_page(
        session, stmt, key=[DocumentVersion.number], page=page, key_of=lambda v: (v.number,)
    )


async def get(
    session: AsyncSession,
    *,
    who: Principal,
    version_id: int,
    document_id: int | None = None,
    project_id: int | None = None,
    capability: Capability = Capability.DOCUMENTS_READ,
    message: str | None = None,
    lock: bool = False,
) -> tuple[Document, DocumentVersion]:
    """Return a version and its document; NotFound unless the caller can see both (a
    version in the trash is not found)."""
    version = await session.get(DocumentVersion, version_id)
    if (
        version is None
        or version.document_id is None  # an unclaimed upload (domain/unclaimed.py)
        or version.trashed_at is not None
        or (document_id is not None and version.document_id != document_id)
    ):
        raise NotFound(VERSION_NOT_FOUND)
    try:
        _, document = await documents.load_scoped(
            session,
            who,
            version.document_id,
            capability,
            project_id=project_id,
            message=message,
            lock=lock,
        )
    except NotFound:
        raise NotFound(VERSION_NOT_FOUND) from None
    return document, version


async def for_download(
    session: AsyncSession,
    *,
    who: Principal,
    document_id: int | None = None,
    version_id: int | None = None,
    project_id: int | None = None,
) -> DocumentVersion:
    """Return the version to download (the current one when `version_id` is None), after
    checking read access and the project's downloadViaApi setting."""
    if version_id is None:
        if document_id is None:
            raise TypeError("for_download needs a document_id or a version_id")
        _, document = await documents.load_scoped(
            session, who, document_id, Capability.DOCUMENTS_READ, project_id=project_id
        )
        version = await session.get_one(DocumentVersion, document.current_version_id)
    else:
        document, version = await get(
            session, who=who, version_id=version_id, document_id=document_id, project_id=project_id
        )
    project = await session.get_one(Project, document.project_id)
    access.require_download_allowed(project)
    return version


async def delete(
    session: AsyncSession,
    *,
    who: Principal,
    version_id: int,
    document_id: int | None = None,
    project_id: int | None = None,
) -> Document:
    """Move a version to the trash (domain/trash.py): from now on every read answers as if
    it were gone, the newest remaining version becomes current, and the change feed
    reports `version.deleted`. The only live version stays (Conflict); a version of a
    document under a legal hold is refused (Held, a 409)."""
    document, version = await get(
        session,
        who=who,
        version_id=version_id,
        document_id=document_id,
        project_id=project_id,
        capability=Capability.DOCUMENTS_DELETE,
        message=DELETE_FORBIDDEN,
        # The document row first, as a document's deletion does: two deletes cannot both
        # see "two left", and a document trashed meanwhile is found gone.
        lock=True,
    )
    await holds.refuse_if_held(
        session,
        project_id=document.project_id,
        what=f"version {version_id} of document {document.id}",
        document_ids=[document.id],
        details={"documentId": document.id, "versionId": version_id},
    )
    now = await stamp(session)
    await session.execute(update(Document).where(Document.id == document.id).values(updated_at=now))
    remaining = await session.scalar(
        select(func.count()).where(DocumentVersion.document_id == document.id, LIVE_VERSION)
    )
    if (remaining or 0) <= 1:
        raise Conflict("You cannot delete the only version of a document")
    # Only a live row is trashed: of two concurrent deletes of one version, one wins.
    trashed = await session.execute(
        update(DocumentVersion)
        .where(DocumentVersion.id == version_id, LIVE_VERSION)
        .values(trashed_at=now)
    )
    if trashed.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(VERSION_NOT_FOUND)
    events.emit(
        session,
        events.VersionDeleted(
            project_id=document.project_id,
            document_id=document.id,
            version_id=version_id,
            details={"number": version.number, "trash": True},
        ),
    )
    await filing.set_current(session, document_id=document.id)
    return await session.get_one(Document, document.id, populate_existing=True)
