"""Documents: filed in a project (optionally a folder), always with at least one version.

New documents and versions are written by domain/filing.py; this module reads documents
and changes what is not a version: folder, title, description, field values. A page of a
project's documents is read by domain/document_pages.py. Deletion moves a document to the
trash (domain/trash.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Table,
    bindparam,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import TableValuedAlias

from casefolio.db import reads
from casefolio.db.live import LIVE
from casefolio.db.models import Document, DocumentVersion, Field, FieldValue, is_id
from casefolio.db.reads import BatchedRead, Reader, read_rows
from casefolio.db.stamps import stamp
from casefolio.domain import access, events, fields, folders, holds, text
from casefolio.domain.access import ProjectScope
from casefolio.domain.errors import NotFound
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.domain.rows import DocumentRow, FieldRow, VersionRow, labelled, row_of

MAX_TITLE = text.MAX_TITLE
# The tables behind the models, for hot statements built of columns only (no ORM loading).
_DOCUMENTS, _VERSIONS, _FIELDS, _VALUES = (
    cast(Table, model.__table__) for model in (Document, DocumentVersion, Field, FieldValue)
)


@dataclass(frozen=True)
class FieldEntry:
    field: FieldRow
    value: Any


@dataclass(frozen=True)
class DocumentView:
    """A document with what every dialect shows of it: current version and field values,
    as plain rows built from named columns; the one shape both dialects render."""

    document: DocumentRow
    current: VersionRow
    fields: tuple[FieldEntry, ...]


def check_title(title: str) -> str:
    return text.stripped_name(title, limit=MAX_TITLE, what="A title", field="title")


async def load_scoped(
    session: AsyncSession,
    who: Principal,
    document_id: int,
    capability: Capability,
    *,
    project_id: int | None = None,
    message: str | None = None,
    lock: bool = False,
) -> tuple[ProjectScope, Document]:
    """Return the caller's scope on the document's project and the document, if they may
    `capability` there; NotFound if they cannot see it. `project_id` None finds the project
    from the document (the v3 dialect's URLs have none).

    `lock`, for a write that changes the document row: the row is locked until the
    transaction ends (PostgreSQL; SQLite's writers take turns anyway) and read as the last
    writer left it, so a write racing a deletion finds the document gone instead of
    changing it in the trash."""
    document = await session.get(
        Document, document_id, with_for_update=True if lock else None, populate_existing=lock
    )
    if (
        document is None
        or document.trashed_at is not None
        or (project_id is not None and document.project_id != project_id)
    ):
        raise NotFound(f"Document {document_id} not found.")
    try:
        scope = await access.scope(session, who, document.project_id, capability, message=message)
    except NotFound:
        raise NotFound(f"Document {document_id} not found.") from None
    return scope, document


async def views(session: AsyncSession, documents: Sequence[object]) -> list[DocumentView]:
    """Given documents (entities or rows), return their views with one query (their
    current versions, each joined to its document's field values), not two per document."""
    if not documents:
        return []
    rows = [row_of(DocumentRow, d) for d in documents]
    version_ids = [_current_id(d) for d in rows]
    current: dict[int, VersionRow] = {}
    entries: dict[int, list[FieldEntry]] = {}
    for row in await session.execute(_CURRENT_VERSIONS, {"version_ids": version_ids}):
        named = row._mapping
        version = current.get(named["version_id"])
        if version is None:
            version = current[named["version_id"]] = row_of(VersionRow, named, "version_")
        if named["field_id"] is not None:
            field = row_of(FieldRow, named, "field_")
            entries.setdefault(version.document_id, []).append(FieldEntry(field, named["value"]))
    return [DocumentView(d, current[_current_id(d)], tuple(entries.get(d.id, ()))) for d in rows]


def _current_id(document: DocumentRow) -> int:
    if document.current_version_id is None:  # filing sets it in the insert's transaction
        raise RuntimeError(f"document {document.id} has no current version")
    return document.current_version_id


async def view(session: AsyncSession, document: object) -> DocumentView:
    [result] = await views(session, [document])
    return result


# Built once: constructing a statement costs more than SQLite takes to run it.
_CURRENT_VERSIONS = (
    select(*labelled(_VERSIONS, "version_"), *labelled(_FIELDS, "field_"), _VALUES.c.value)
    .select_from(
        _VERSIONS.outerjoin(_VALUES, _VALUES.c.document_id == _VERSIONS.c.document_id).outerjoin(
            _FIELDS, _FIELDS.c.id == _VALUES.c.field_id
        )
    )
    .where(_VERSIONS.c.id.in_(bindparam("version_ids", expanding=True)))
    .order_by(_VERSIONS.c.id, _FIELDS.c.id)
)


def _document_read(
    document_id: ColumnElement[int],
    user_id: ColumnElement[int],
    batch: TableValuedAlias | None = None,
) -> Select[Any]:
    """The document, its current version, its field values (one row per value, or one row
    with no field) and the rank of the caller's role on its project: one statement of
    labelled table columns, read by name. With `batch` (key_table), the read of each of its
    keys, followed by the key's position."""
    read = select(
        *labelled(_DOCUMENTS, "document_"),
        *labelled(_VERSIONS, "version_"),
        *labelled(_FIELDS, "field_"),
        _VALUES.c.value.label("value"),
        access.role_rank_column(_DOCUMENTS.c.project_id, user_id).label("rank"),
    ).select_from(
        _DOCUMENTS.join(_VERSIONS, _VERSIONS.c.id == _DOCUMENTS.c.current_version_id)
        .outerjoin(_VALUES, _VALUES.c.document_id == _DOCUMENTS.c.id)
        .outerjoin(_FIELDS, _FIELDS.c.id == _VALUES.c.field_id)
    )
    if batch is not None:
        read = read.add_columns(batch.c[reads.POSITION]).order_by(batch.c[reads.POSITION])
    return read.where(_DOCUMENTS.c.id == document_id, LIVE).order_by(_FIELDS.c.id)


# Built once: constructing the statement costs more than SQLite takes to run it.
_READ_KEYS = reads.key_table(document_id=BigInteger(), user_id=BigInteger())
DOCUMENT_READ = BatchedRead(
    single=_document_read(bindparam("document_id"), bindparam("user_id")),
    many=_document_read(_READ_KEYS.c.document_id, _READ_KEYS.c.user_id, _READ_KEYS),
    keys=frozenset({"document_id", "user_id"}),
)
# The read's column names: the fast reader hands back plain tuples, named by these.
_READ_NAMES = tuple(c.name for c in DOCUMENT_READ.single.selected_columns)


async def get(
    db: Reader, *, who: Principal, document_id: int, project_id: int | None = None
) -> DocumentView:
    """The read every dialect serves most: the document with its current version, field
    values and the caller's role, in one statement, as plain rows (domain/rows.py). A
    session or, cheaper, the database's StatementReader will do."""
    if not is_id(document_id):
        # Never sent: in a batch (fastpath/batching.py) the driver's refusal would fail every read.
        raise NotFound(f"Document {document_id} not found.")
    parameters = {"document_id": document_id, "user_id": who.user_id}
    # A batched read adds its key's position after the named columns: zip leaves it out.
    found = await read_rows(db, DOCUMENT_READ, parameters)
    rows = [dict(zip(_READ_NAMES, row, strict=False)) for row in found]
    if not rows:
        raise NotFound(f"Document {document_id} not found.")
    first = rows[0]
    document = row_of(DocumentRow, first, "document_")
    if project_id is not None and document.project_id != project_id:
        raise NotFound(f"Document {document_id} not found.")
    try:
        access.scope_ranked(who, document.project_id, first["rank"], Capability.DOCUMENTS_READ)
    except NotFound:
        raise NotFound(f"Document {document_id} not found.") from None
    current = row_of(VersionRow, first, "version_")
    entries = tuple(
        FieldEntry(row_of(FieldRow, row, "field_"), row["value"])
        for row in rows
        if row["field_id"] is not None
    )
    return DocumentView(document, current, entries)


async def move(
    session: AsyncSession,
    *,
    who: Principal,
    project_id: int,
    document_id: int,
    folder_id: int | None,
) -> DocumentView:
    """Move a document into a folder of the same project (None: the project root)."""
    writable = Capability.DOCUMENTS_WRITE
    scope, document = await load_scoped(
        session, who, document_id, writable, project_id=project_id, lock=True
    )
    if folder_id is not None:
        await folders.get(session, scope=scope, folder_id=folder_id)
    if document.folder_id != folder_id:
        # Holds follow documents: leaving a held folder keeps the folder's holds on it.
        await holds.record_move(session, document=document, to_folder=folder_id)
        events.emit(
            session,
            events.DocumentMoved(
                project_id=project_id,
                document_id=document_id,
                folder_id=folder_id,
                details={"from": document.folder_id, "to": folder_id},
            ),
        )
        document.folder_id = folder_id
        document.updated_at = await stamp(session)
    await session.flush()
    return await view(session, document)


async def update_details(
    session: AsyncSession,
    *,
    who: Principal,
    document_id: int,
    project_id: int | None = None,
    title: str | None = None,
    description: str | None = None,
) -> DocumentView:
    writable = Capability.DOCUMENTS_WRITE
    _, document = await load_scoped(
        session, who, document_id, writable, project_id=project_id, lock=True
    )
    changed: list[str] = []
    if title is not None and (title := check_title(title)) != document.title:
        document.title = title
        changed.append("title")
    if description is not None and (
        (description := text.bounded_description(description)) != document.description
    ):
        document.description = description
        changed.append("description")
    if not changed:
        # Nothing to report, and updatedAt stays: sync clients would fetch it for nothing.
        return await view(session, document)
    events.emit(
        session,
        events.DocumentUpdated(
            project_id=document.project_id, document_id=document_id, details={"changed": changed}
        ),
    )
    return await _changed(session, document)


async def set_field(
    session: AsyncSession,
    *,
    who: Principal,
    project_id: int,
    document_id: int,
    field_id: int,
    value: Any,
) -> DocumentView:
    writable = Capability.FIELDS_WRITE
    scope, document = await load_scoped(
        session, who, document_id, writable, project_id=project_id, lock=True
    )
    row = await fields.get(session, scope=scope, field_id=field_id)
    if not await fields.store_values(
        session, document=document, values={row.id: fields.coerce(row, value)}
    ):
        return await view(session, document)  # the value it had: nothing to report
    events.emit(
        session,
        events.FieldSet(
            project_id=project_id, document_id=document_id, details={"fieldId": field_id}
        ),
    )
    return await _changed(session, document)


async def _changed(session: AsyncSession, document: Document) -> DocumentView:
    """Bump a changed document's updatedAt (what sync clients poll on); return its view."""
    document.updated_at = await stamp(session)
    await session.flush()
    return await view(session, document)


def visible_documents(who: Principal) -> Select[Document]:
    """All documents the caller may read, for cross-project lists (the v3 collection)."""
    stmt = select(Document).where(LIVE)
    if not who.is_operator:
        stmt = stmt.where(Document.project_id.in_(access.visible_project_ids(who)))
    return stmt


async def count(session: AsyncSession, stmt: Select[Document]) -> int:
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    return int(total or 0)
