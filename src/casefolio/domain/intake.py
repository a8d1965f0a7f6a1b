"""The front doors of filing: an upload, a replacement and an import are prepared here
(clean file names, content types, blobs made durable, access, folders and fields checked)
and written by `filing.file()`, the one place that writes documents and versions.

A blob is made durable before the transaction commits, always. On SQLite it is made durable
before the transaction's first query, so SQLite's write lock is not held across its fsyncs;
on PostgreSQL, which locks rows and not the database, an upload's checks and inserts run
while the blob's fsyncs do (`_storing`), and the commit waits for both. A request refused
after the blob was stored leaves an unreferenced blob, which `casefolio gc` removes.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.live import LIVE
from casefolio.db.models import Document, Folder, Project
from casefolio.domain import blob_locks, fields, filing, folders, text
from casefolio.domain import documents as documents_
from casefolio.domain.access import ProjectScope
from casefolio.domain.documents import DocumentView, FieldEntry
from casefolio.domain.errors import Conflict, Invalid, NotFound
from casefolio.domain.filing import Content, Filed, NewDocument, NewVersion
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.fastpath import inflight
from casefolio.storage.base import BlobStore, SpooledFile


@dataclass(frozen=True)
class NewFile:
    """A received upload: bytes already spooled and hashed, plus what the client said of them."""

    spooled: SpooledFile
    file_name: str
    content_type: str | None = None


@dataclass(frozen=True)
class StoredFile:
    """A file whose blob the caller has already made durable, and where to file it."""

    folder_id: int | None
    file_name: str
    sha256: str
    size: int
    content_type: str | None = None


def clean_file_name(name: str | None) -> str:
    """Given a client's file name, return a safe base name, or raise Invalid if nothing is left.

    The last path segment (either separator), without control or format characters (a bidi
    override makes `invoice\u202egpj.exe` read as `invoiceexe.jpg`), shortened to 255
    characters keeping its extension.
    """
    base = text.visible(text.last_segment(name or "")).strip()
    base = text.shorten_file_name(base)
    if not base or base in (".", ".."):
        raise Invalid(
            "The upload needs a file name: a filename in the file part, or ?fileName=.",
            [{"field": "fileName", "message": "missing"}],
        )
    return base


# A media type as a Content-Type header carries it (RFC 9110 8.3): type/subtype, then any
# parameters, all in visible ASCII. Anything else could not be sent back with the download.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;[\x20-\x7e]*)?")


def media_type(given: str | None) -> str | None:
    """Given a content type a client sent, return it if it is a media type within the limit,
    other than the generic octet-stream; None when it says nothing usable."""
    given = (given or "").strip()
    if given == "application/octet-stream" or len(given) > text.MAX_CONTENT_TYPE:
        return None
    return given if _MEDIA_TYPE.fullmatch(given) else None


def content_type(given: str | None, file_name: str) -> str:
    """The media type the client sent, or else the one the file name suggests."""
    if (usable := media_type(given)) is not None:
        return usable
    guessed, _ = mimetypes.guess_type(file_name)
    return guessed or "application/octet-stream"


async def stored(blobs: BlobStore, received: NewFile) -> Content:
    """Make an upload's bytes durable; return them as Content under a clean name."""
    content = _content_received(received)
    await blobs.put(received.spooled)
    return content


def _content_received(received: NewFile) -> Content:
    file_name = clean_file_name(received.file_name)
    sha256, size = received.spooled.sha256, received.spooled.size
    return Content(file_name, sha256, size, content_type(received.content_type, file_name))


@asynccontextmanager
async def _storing(
    session: AsyncSession, blobs: BlobStore, received: NewFile, *, alongside: bool = True
) -> AsyncIterator[Content]:
    """Given the writing session and an upload, yield its Content; on leaving (without an
    error) its blob is durable, and held until the commit (blob_locks). On PostgreSQL a
    small upload's blob is stored while the block's statements run (an upload's checks and
    inserts are several round trips, its fsyncs several ms on a busy disk: one caller at a
    time waits for the longer, not the sum); on SQLite before the block, so that the write
    lock its first statement takes is not held across fsyncs, and so too on PostgreSQL for
    a file larger than is held in memory (its transaction would be writing for as long as
    the put takes, seconds to S3, and hold back every listing's settled instant,
    db/stamps.py) or unless `alongside` (a block that locks rows its peers wait for)."""
    small = received.spooled.held is not None
    if not (alongside and small) or session.get_bind().dialect.name != "postgresql":
        content = await stored(blobs, received)
        yield content
        await blob_locks.confirm_stored(session, blobs, [content.sha256])
        return
    content = _content_received(received)
    # In a worker thread even for a request alone (fastpath/inflight.py): on the loop the
    # put would hold up the statements it is meant to overlap.
    putting = inflight.beside(blobs.put(received.spooled))
    try:
        yield content
    except BaseException:
        # The put still owns the spooled file (it deletes it when done), and the caller
        # deletes it on its way out: the put finishes first, whatever happens to the request.
        with anyio.CancelScope(shield=True):
            await asyncio.wait([putting])
        if not putting.cancelled():
            putting.exception()  # retrieved: the block's own error is the one raised
        raise
    # Durable before the caller may commit the rows that point at it.
    with anyio.CancelScope(shield=True):
        await asyncio.wait([putting])
    putting.result()
    await blob_locks.confirm_stored(session, blobs, [content.sha256])


def _content_of(file: StoredFile) -> Content:
    return Content(
        file.file_name, file.sha256, file.size, content_type(file.content_type, file.file_name)
    )


# ---- the front doors -----------------------------------------------------------------------


async def upload(
    session: AsyncSession,
    *,
    who: Principal,
    project_id: int,
    blobs: BlobStore,
    received: NewFile,
    title: str | None = None,
    folder_id: int | None = None,
    description: str = "",
    field_values: dict[str, Any] | None = None,
    reject_duplicate: bool = False,
) -> tuple[DocumentView, Filed]:
    """File a new document with its first version (title: the file name unless given)."""
    name = clean_file_name(received.file_name)
    title = documents_.check_title(title if title is not None else name)
    # A duplicate check locks the project's row until the commit: not across the fsyncs.
    async with _storing(session, blobs, received, alongside=not reject_duplicate) as content:
        # On SQLite the first statement takes the write lock: every statement from here on
        # is one more that all other writers wait for.
        scope, project_fields = await fields.scope_and_fields(
            session, who, project_id, Capability.DOCUMENTS_WRITE
        )
        if folder_id is not None:
            await folders.get(session, scope=scope, folder_id=folder_id)
        values = fields.resolve_among(
            project_fields, project_id=project_id, values=field_values or {}, for_new_document=True
        )
        if reject_duplicate:
            await _refuse_duplicate(session, project_id, content.sha256)
        new = NewDocument(content, title, folder_id, description, values)
        filed = await filing.file(session, scope, documents=[new])
    # The view from what was just written: re-reading it would cost queries while holding
    # the write lock.
    by_id = {f.id: f for f in project_fields}
    entries = tuple(
        FieldEntry(by_id[field_id], value)
        for field_id, value in sorted(values.items())
        if value is not None
    )
    return DocumentView(filed.documents[0], filed.versions[0], entries), filed


async def _refuse_duplicate(session: AsyncSession, project_id: int, sha256: str) -> None:
    # Duplicate checks in one project take turns, or two copies sent at once could both
    # pass: a row lock on PostgreSQL (SQLite's single writer already serialises them).
    await session.execute(select(Project.id).where(Project.id == project_id).with_for_update())
    existing = (
        await session.execute(
            select(Document.id, Document.title)
            .where(Document.project_id == project_id, Document.current_sha256 == sha256, LIVE)
            .order_by(Document.id)
            .limit(1)
        )
    ).first()
    if existing is not None:
        raise Conflict(
            f"Project {project_id} already holds this content as document {existing.id} "
            f"('{existing.title}')."
        )


async def replace(
    session: AsyncSession,
    *,
    who: Principal,
    document_id: int,
    blobs: BlobStore,
    received: NewFile,
    project_id: int | None = None,
    description: str = "",
) -> Filed:
    """Add an upload as the new current version of a document (of `project_id`, if given)."""
    content = await stored(blobs, received)
    scope, _ = await documents_.load_scoped(
        session, who, document_id, Capability.DOCUMENTS_WRITE, project_id=project_id
    )
    filed = await filing.file(
        session, scope, versions=[NewVersion(document_id, content, description)]
    )
    await blob_locks.confirm_stored(session, blobs, [content.sha256])
    return filed


async def import_files(
    session: AsyncSession,
    *,
    scope: ProjectScope,
    blobs: BlobStore,
    new: Sequence[StoredFile] = (),
    changed: Sequence[tuple[int, StoredFile]] = (),
) -> Filed:
    """The bulk path of `casefolio import`: one new document (title = file name) per new
    file, one new version per changed one. Blobs must be durable and names clean already;
    folders and required fields are checked once for the batch."""
    if not new and not changed:
        return Filed([], [], [])
    folder_ids = {f.folder_id for f in new if f.folder_id is not None}
    if folder_ids:
        found = set(
            await session.scalars(
                select(Folder.id).where(
                    Folder.project_id == scope.project_id, Folder.id.in_(folder_ids)
                )
            )
        )
        if missing := folder_ids - found:
            raise NotFound(f"Folder {min(missing)} not found in project {scope.project_id}.")
    if new:
        await fields.resolve_values(session, scope=scope, values={}, for_new_document=True)
    filed = await filing.file(
        session,
        scope,
        documents=[
            NewDocument(_content_of(f), documents_.check_title(f.file_name), f.folder_id)
            for f in new
        ],
        versions=[NewVersion(document_id, _content_of(f)) for document_id, f in changed],
    )
    shas = [f.sha256 for f in new] + [f.sha256 for _, f in changed]
    await blob_locks.confirm_stored(session, blobs, shas)
    return filed
