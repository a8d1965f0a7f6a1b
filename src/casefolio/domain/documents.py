"""Documents: filed in a project (optionally a folder), always with at least one version."""

from __future__ import annotations

import functools
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Insert,
    Integer,
    Select,
    Table,
    bindparam,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.expression import TableValuedAlias

from casefolio.db import batching
from casefolio.db.batching import BatchedRead
from casefolio.db.engine import Reader, read_all, read_rows
from casefolio.db.models import (
    Document,
    DocumentVersion,
    Field,
    FieldValue,
    Folder,
    Project,
    is_id,
)
from casefolio.db.types import utcnow
from casefolio.domain import access, events, fields, folders, text
from casefolio.domain.errors import Conflict, Invalid, NotFound
from casefolio.domain.pages import Page, PageRequest, encode_cursor
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.domain.rows import (
    DocumentData,
    DocumentRow,
    FieldData,
    FieldRow,
    VersionData,
    VersionRow,
)
from casefolio.storage.base import BlobStore, SpooledFile

MAX_TITLE = text.MAX_TITLE
# The tables behind the models, for hot statements built of columns only (no ORM loading).
_DOCUMENTS, _VERSIONS, _FIELDS, _VALUES, _FOLDERS = (
    cast(Table, model.__table__) for model in (Document, DocumentVersion, Field, FieldValue, Folder)
)
_UPDATED_AT = _DOCUMENTS.c.updated_at


@dataclass(frozen=True)
class NewFile:
    """A received upload: bytes already spooled and hashed, plus what the client said of them."""

    spooled: SpooledFile
    file_name: str
    content_type: str | None = None


@dataclass(frozen=True)
class FieldEntry:
    field: FieldData
    value: Any


@dataclass(frozen=True)
class DocumentView:
    """A document with what every dialect shows of it: current version and field values."""

    document: DocumentData
    current: VersionData
    fields: list[FieldEntry]


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


def content_type_of(file: NewFile, file_name: str) -> str:
    return _guess_content_type(file.content_type, file_name)


def _check_title(title: str) -> str:
    title = title.strip()
    if not title or len(title) > MAX_TITLE:
        raise Invalid(
            f"A title must be 1 to {MAX_TITLE} characters.",
            [{"field": "title", "message": "empty or too long"}],
        )
    return title


async def load(
    session: AsyncSession,
    *,
    who: Principal,
    document_id: int,
    capability: Capability,
    project_id: int | None = None,
    message: str | None = None,
) -> Document:
    """Return the document if the caller may `capability` on it; NotFound if they cannot see it.

    `project_id` None finds the project from the document (the v3 dialect's URLs have none).
    """
    document = await session.get(Document, document_id)
    if document is None or (project_id is not None and document.project_id != project_id):
        raise NotFound(f"Document {document_id} not found.")
    try:
        await access.require(session, who, document.project_id, capability, message=message)
    except NotFound:
        raise NotFound(f"Document {document_id} not found.") from None
    return document


async def views(session: AsyncSession, documents: Sequence[DocumentData]) -> list[DocumentView]:
    """Given documents, return their views with two batched queries, not two per document;
    versions and fields as plain rows (domain/rows.py)."""
    if not documents:
        return []
    version_ids = [d.current_version_id for d in documents]
    current = {
        row.id: VersionRow._make(row)
        for row in await session.execute(_CURRENT_VERSIONS, {"version_ids": version_ids})
    }
    entries = await _field_entries(session, [d.id for d in documents])
    return [
        DocumentView(d, current[d.current_version_id], entries.get(d.id, [])) for d in documents
    ]


# Built once: constructing a statement costs more than SQLite takes to run it.
_CURRENT_VERSIONS = select(*_VERSIONS.columns).where(
    _VERSIONS.c.id.in_(bindparam("version_ids", expanding=True))
)
_FIELD_VALUES = (
    select(_VALUES.c.document_id, *_FIELDS.columns, _VALUES.c.value)
    .join_from(_VALUES, _FIELDS, _FIELDS.c.id == _VALUES.c.field_id)
    .where(_VALUES.c.document_id.in_(bindparam("document_ids", expanding=True)))
    .order_by(_VALUES.c.document_id, _FIELDS.c.id)
)


async def _field_entries(
    session: AsyncSession, document_ids: list[int]
) -> dict[int, list[FieldEntry]]:
    rows = await session.execute(_FIELD_VALUES, {"document_ids": document_ids})
    entries: dict[int, list[FieldEntry]] = {}
    for row in rows:
        field = FieldRow._make(row[1:-1])
        entries.setdefault(row[0], []).append(FieldEntry(field, row[-1]))
    return entries


async def view(session: AsyncSession, document: Document) -> DocumentView:
    [result] = await views(session, [document])
    return result


def _document_read(
    document_id: ColumnElement[int],
    user_id: ColumnElement[int],
    batch: TableValuedAlias | None = None,
) -> Select[Any]:
    """The document, its current version, its field values (one row per value, or one row
    with no field) and the rank of the caller's role on its project: one statement of table
    columns only. Through the ORM the same read cost ~100 µs more per request
    (bench/api_breakdown.py), for entities a GET only reads. With `batch` (key_table), the
    read of each of its keys, followed by the key's position."""
    read = select(
        *_DOCUMENTS.columns,
        *_VERSIONS.columns,
        *_FIELDS.columns,
        _VALUES.c.value,
        access.role_rank_column(_DOCUMENTS.c.project_id, user_id),
    ).select_from(
        _DOCUMENTS.join(_VERSIONS, _VERSIONS.c.id == _DOCUMENTS.c.current_version_id)
        .outerjoin(_VALUES, _VALUES.c.document_id == _DOCUMENTS.c.id)
        .outerjoin(_FIELDS, _FIELDS.c.id == _VALUES.c.field_id)
    )
    if batch is not None:
        read = read.add_columns(batch.c[batching.POSITION]).order_by(batch.c[batching.POSITION])
    return read.where(_DOCUMENTS.c.id == document_id).order_by(_FIELDS.c.id)


# Built once: constructing the statement costs more than SQLite takes to run it.
_READ_KEYS = batching.key_table(document_id=BigInteger(), user_id=BigInteger())
DOCUMENT_READ = BatchedRead(
    single=_document_read(bindparam("document_id"), bindparam("user_id")),
    many=_document_read(_READ_KEYS.c.document_id, _READ_KEYS.c.user_id, _READ_KEYS),
    keys=frozenset({"document_id", "user_id"}),
)
# Where each part starts in its rows: document, version, field, value, rank.
_VERSIONS_AT = len(_DOCUMENTS.columns)
_FIELDS_AT = _VERSIONS_AT + len(_VERSIONS.columns)
_VALUE_AT = _FIELDS_AT + len(_FIELDS.columns)
_RANK_AT = _VALUE_AT + 1


async def get(
    db: Reader, *, who: Principal, document_id: int, project_id: int | None = None
) -> DocumentView:
    """The read every dialect serves most: the document with its current version, field
    values and the caller's role, in one statement, as plain rows (domain/rows.py). A
    session or, cheaper, the database's StatementReader will do."""
    if not is_id(document_id):
        # Never sent: in a batch (db/batching.py) the driver's refusal would fail every read.
        raise NotFound(f"Document {document_id} not found.")
    parameters = {"document_id": document_id, "user_id": who.user_id}
    rows = [tuple(row) for row in await read_rows(db, DOCUMENT_READ, parameters)]
    if not rows:
        raise NotFound(f"Document {document_id} not found.")
    document = DocumentRow._make(rows[0][:_VERSIONS_AT])
    if project_id is not None and document.project_id != project_id:
        raise NotFound(f"Document {document_id} not found.")
    try:
        rank = rows[0][_RANK_AT]
        access.require_ranked(who, document.project_id, rank, Capability.DOCUMENTS_READ)
    except NotFound:
        raise NotFound(f"Document {document_id} not found.") from None
    current = VersionRow._make(rows[0][_VERSIONS_AT:_FIELDS_AT])
    entries = [
        FieldEntry(FieldRow._make(row[_FIELDS_AT:_VALUE_AT]), row[_VALUE_AT])
        for row in rows
        if row[_FIELDS_AT] is not None
    ]
    return DocumentView(document, current, entries)


async def list_page(
    db: Reader,
    *,
    who: Principal,
    project_id: int,
    page: PageRequest,
    folder_id: int | None = None,
    changed_since: datetime | None = None,
) -> Page[DocumentView]:
    """Documents of a project (or one folder) in (updatedAt, id) order, as plain rows (the
    read sync clients poll: as ORM entities a page of 100 cost several times more).

    `changed_since` is inclusive: timestamps have millisecond resolution, and a sync client
    that sends back the newest updatedAt it saw must not miss a document sharing that instant.

    One statement whatever the page's size: the page with each document's current version,
    field values and the caller's role on the project (`_page_read`); only a page that comes
    back empty needs the access check (and the folder's) of its own. A session or, cheaper,
    the database's StatementReader will do.
    """
    parameters: dict[str, Any] = {"project_id": project_id, "user_id": who.user_id}
    if folder_id is not None:
        parameters["folder_id"] = folder_id
    if changed_since is not None:
        parameters["changed_since"] = changed_since
    if page.after is not None:
        parameters["after_updated_at"], parameters["after_id"] = page.after
    parameters["limit"] = page.limit + 1
    statement = _page_read(
        folder=folder_id is not None, since=changed_since is not None, after=page.after is not None
    )
    rows = await read_all(db, statement, parameters)
    if rows:
        # A document of the project was found, so the project (and the folder) exist.
        access.require_ranked(who, project_id, rows[0][_PAGE_RANK_AT], Capability.DOCUMENTS_READ)
    else:
        found = await read_all(db, access.PROJECT_AND_RANK, parameters)
        if not found:
            raise NotFound(f"Project {project_id} not found.")
        access.require_ranked(who, project_id, found[0][1], Capability.DOCUMENTS_READ)
        if folder_id is not None and not await read_all(db, _FOLDER_IN_PROJECT, parameters):
            raise NotFound(f"Folder {folder_id} not found in project {project_id}.")
    views: list[DocumentView] = []
    for row in rows:
        if not views or views[-1].document.id != row[0]:
            document = DocumentRow._make(row[:_VERSIONS_AT])
            views.append(DocumentView(document, VersionRow._make(row[_VERSIONS_AT:_FIELDS_AT]), []))
        if row[_FIELDS_AT] is not None:
            entry = FieldEntry(FieldRow._make(row[_FIELDS_AT:_VALUE_AT]), row[_VALUE_AT])
            views[-1].fields.append(entry)
    if len(views) > page.limit:
        views = views[: page.limit]
        last = views[-1].document
        return Page(views, encode_cursor((last.updated_at, last.id)))
    return Page(views, None)


_PAGE_RANK_AT = _RANK_AT  # the page's rows have the document read's columns and order

_FOLDER_IN_PROJECT = select(_FOLDERS.c.id).where(
    _FOLDERS.c.id == bindparam("folder_id"), _FOLDERS.c.project_id == bindparam("project_id")
)


@functools.cache
def _page_read(*, folder: bool, since: bool, after: bool) -> Select[Any]:
    """A page of documents (at most `limit`, a parameter, in keyset order), each joined to
    its current version and its field values: one row per value, or one row with no field,
    ordered by the page's key and then by field; last, the caller's rank on the project
    (the same in every row). Built once per shape (parameters only)."""
    documents = select(*_DOCUMENTS.columns).where(
        _DOCUMENTS.c.project_id == bindparam("project_id")
    )
    if folder:
        documents = documents.where(_DOCUMENTS.c.folder_id == bindparam("folder_id"))
    if since:
        documents = documents.where(
            _DOCUMENTS.c.updated_at >= bindparam("changed_since", type_=_UPDATED_AT.type)
        )
    if after:
        documents = documents.where(
            tuple_(_UPDATED_AT, _DOCUMENTS.c.id)
            > tuple_(
                bindparam("after_updated_at", type_=_UPDATED_AT.type),
                bindparam("after_id", type_=_DOCUMENTS.c.id.type),
            )
        )
    page = (
        documents.order_by(_UPDATED_AT, _DOCUMENTS.c.id)
        .limit(bindparam("limit", type_=Integer()))
        .subquery("page")
    )
    return (
        select(
            *page.columns,
            *_VERSIONS.columns,
            *_FIELDS.columns,
            _VALUES.c.value,
            # Of the parameter, not of a row's column: the databases evaluate it once.
            access.role_rank_column(bindparam("project_id")),
        )
        .select_from(
            page.join(_VERSIONS, _VERSIONS.c.id == page.c.current_version_id)
            .outerjoin(_VALUES, _VALUES.c.document_id == page.c.id)
            .outerjoin(_FIELDS, _FIELDS.c.id == _VALUES.c.field_id)
        )
        .order_by(page.c.updated_at, page.c.id, _FIELDS.c.id)
    )


async def find_duplicate(session: AsyncSession, *, project_id: int, sha256: str) -> Document | None:
    stmt = select(Document).where(
        Document.project_id == project_id, Document.current_sha256 == sha256
    )
    return (await session.scalars(stmt.order_by(Document.id).limit(1))).first()


async def create(
    session: AsyncSession,
    *,
    who: Principal,
    project_id: int,
    blobs: BlobStore,
    file: NewFile,
    title: str | None = None,
    folder_id: int | None = None,
    description: str = "",
    field_values: dict[str, Any] | None = None,
    reject_duplicate: bool = False,
) -> DocumentView:
    """File a new document with its first version.

    The blob is made durable first, so a commit can only ever point at bytes that exist; and
    before the first query, so SQLite's write lock is not held across its fsyncs. A request
    refused after that leaves an unreferenced blob, which `casefolio gc` removes.
    """
    file_name = clean_file_name(file.file_name)
    title = _check_title(title if title is not None else file_name)
    await blobs.put(file.spooled)
    # On SQLite this statement takes the write lock: every statement from here on is one
    # more that all other writers wait for, so the project and its fields come in one.
    rows = (await session.execute(_PROJECT_AND_FIELDS, {"project_id": project_id})).all()
    if not rows:
        raise NotFound(f"Project {project_id} not found.")
    await access.require_on(session, who, project_id, Capability.DOCUMENTS_WRITE)
    if folder_id is not None:
        await folders.get(session, project_id=project_id, folder_id=folder_id)
    values = fields.resolve_among(
        [row.Field for row in rows if row.Field is not None],
        project_id=project_id,
        values=field_values or {},
        for_new_document=True,
    )
    if reject_duplicate:
        # Duplicate checks in one project take turns, or two copies sent at once could both
        # pass: a row lock on PostgreSQL (SQLite's single writer already serialises them).
        await session.execute(select(Project.id).where(Project.id == project_id).with_for_update())
        existing = await find_duplicate(session, project_id=project_id, sha256=file.spooled.sha256)
        if existing is not None:
            raise Conflict(
                f"Project {project_id} already holds this content as document {existing.id} "
                f"('{existing.title}')."
            )
    now = utcnow()
    document = Document(
        project_id=project_id,
        folder_id=folder_id,
        title=title,
        description=description,
        current_sha256=file.spooled.sha256,
        last_version_number=1,
        created_by=who.user_id,
        created_at=now,
        updated_at=now,
    )
    # Core statements, not the unit of work: its three flushes cost more than the inserts
    # (measured: 18% of an upload's CPU). The objects only carry the answer.
    version = _version(None, 1, file, file_name, who, now)
    conn = await session.connection()
    await _insert_with_first_version(conn, document, version)
    stored = {field_id: value for field_id, value in values.items() if value is not None}
    if stored:
        await conn.execute(
            insert(FieldValue),
            [
                {"document_id": document.id, "field_id": field_id, "value": value}
                for field_id, value in stored.items()
            ],
        )
    # The view from what was just written (the fields are in the session since
    # resolve_values): re-reading it would cost two queries while holding the write lock.
    entries = [
        FieldEntry(await session.get_one(Field, field_id), value)
        for field_id, value in sorted(stored.items())
    ]
    events.emit(session, _created(document, version))
    return DocumentView(document, version, entries)


def _created(document: Document, version: DocumentVersion) -> events.DomainEvent:
    return events.DocumentCreated(
        project_id=document.project_id,
        document_id=document.id,
        version_id=version.id,
        folder_id=document.folder_id,
        details={"title": document.title, "fileName": version.file_name, "number": 1},
    )


# The project's id (its row exists) and its fields; the access check needs only the id.
_PROJECT_AND_FIELDS = (
    select(Project.id, Field)
    .outerjoin(Field, Field.project_id == Project.id)
    .where(Project.id == bindparam("project_id"))
    .order_by(Field.id)
)
_INSERT_DOCUMENT = insert(Document).returning(Document.id)
_INSERT_VERSION = insert(DocumentVersion).returning(DocumentVersion.id)


# What a new document and version are given; the database assigns the rest.
_NEW_DOCUMENT_KEYS = [
    c.key for c in _DOCUMENTS.columns if c.key not in ("id", "current_version_id")
]
_NEW_VERSION_KEYS = [c.key for c in _VERSIONS.columns if c.key not in ("id", "document_id")]


def _one_statement_insert() -> Insert:
    """PostgreSQL: a new document and its first version in one statement.

    The document's INSERT takes the version's id from its sequence, and the version's
    INSERT reads the new document from a CTE; the foreign key is checked at the end of the
    statement, when both rows exist. Parameters: `document_<column>` and `version_<column>`.
    """
    new_document = (
        insert(_DOCUMENTS)
        .values(
            {
                **{
                    c.key: bindparam(f"document_{c.key}", type_=c.type)
                    for c in _DOCUMENTS.columns
                    if c.key in _NEW_DOCUMENT_KEYS
                },
                "current_version_id": func.nextval(
                    func.pg_get_serial_sequence(_VERSIONS.name, "id")
                ),
            }
        )
        .returning(_DOCUMENTS.c.id, _DOCUMENTS.c.current_version_id)
        .cte("new_document")
    )
    given = [c for c in _VERSIONS.columns if c.key in _NEW_VERSION_KEYS]
    return (
        insert(_VERSIONS)
        .from_select(
            ["id", "document_id", *(c.key for c in given)],
            select(
                new_document.c.current_version_id,
                new_document.c.id,
                *(bindparam(f"version_{c.key}", type_=c.type) for c in given),
            ),
        )
        .returning(_VERSIONS.c.document_id, _VERSIONS.c.id)
    )


_INSERT_DOCUMENT_AND_VERSION = _one_statement_insert()


async def _insert_with_first_version(
    conn: AsyncConnection, document: Document, version: DocumentVersion
) -> None:
    """Insert a new document and its first version; set their ids and the current version.

    On PostgreSQL each statement is a round trip, and three of an upload's six (with BEGIN,
    the project read and COMMIT) went to this: one statement does it there. SQLite runs
    statements in-process, where the three plain ones are the cheaper way.
    """
    if conn.dialect.name == "postgresql":
        params = {f"document_{k}": getattr(document, k) for k in _NEW_DOCUMENT_KEYS}
        params.update({f"version_{k}": getattr(version, k) for k in _NEW_VERSION_KEYS})
        document.id, version.id = (await conn.execute(_INSERT_DOCUMENT_AND_VERSION, params)).one()
        version.document_id = document.id
    else:
        document.id = (await conn.execute(_INSERT_DOCUMENT, _columns(document))).scalar_one()
        version.document_id = document.id
        version.id = (await conn.execute(_INSERT_VERSION, _columns(version))).scalar_one()
        await conn.execute(_SET_CURRENT, {"document_id": document.id, "version_id": version.id})
    document.current_version_id = version.id


_SET_CURRENT = (
    update(Document)
    .where(Document.id == bindparam("document_id"))
    .values(current_version_id=bindparam("version_id"))
)


def _columns(row: Document | DocumentVersion) -> dict[str, Any]:
    """The values set on a new ORM object, for a Core insert; a column left unset keeps
    its default, as the unit of work would have given it."""
    values = {c.key: getattr(row, c.key) for c in row.__table__.columns}
    return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class StoredFile:
    """A file whose blob the caller has already made durable, and where to file it."""

    folder_id: int | None
    file_name: str
    sha256: str
    size: int
    content_type: str | None = None


async def create_many(
    session: AsyncSession, *, who: Principal, project_id: int, files: Sequence[StoredFile]
) -> list[int]:
    """File one new document (title = file name, version 1) per stored file; return their ids.

    The bulk path for imports: access, folders and required fields are checked once, and
    the rows go in with three statements however many files there are. The caller must have
    `put` every blob first, so the commit can only point at bytes that exist. File names
    must already be clean (`clean_file_name`); a project with required fields refuses.
    """
    if not files:
        return []
    await access.require(session, who, project_id, Capability.DOCUMENTS_WRITE)
    folder_ids = {f.folder_id for f in files if f.folder_id is not None}
    if folder_ids:
        found = set(
            await session.scalars(
                select(Folder.id).where(Folder.project_id == project_id, Folder.id.in_(folder_ids))
            )
        )
        if missing := folder_ids - found:
            raise NotFound(f"Folder {min(missing)} not found in project {project_id}.")
    await fields.resolve_values(session, project_id=project_id, values={}, for_new_document=True)
    now = utcnow()
    # RETURNING order is not guaranteed (and asking SQLAlchemy to sort it falls back to one
    # INSERT per row), so each row carries a unique placeholder in current_sha256 that ties
    # its returned id to its file; the UPDATE at the end puts the real digest there.
    documents_returned = await session.execute(
        insert(Document).returning(Document.id, Document.current_sha256),
        [
            {
                "project_id": project_id,
                "folder_id": f.folder_id,
                "title": _check_title(f.file_name),
                "description": "",
                "current_sha256": f"pending:{i}",
                "last_version_number": 1,
                "created_by": who.user_id,
                "created_at": now,
                "updated_at": now,
            }
            for i, f in enumerate(files)
        ],
    )
    by_placeholder = {placeholder: doc_id for doc_id, placeholder in documents_returned}
    document_ids = [by_placeholder[f"pending:{i}"] for i in range(len(files))]
    versions_returned = await session.execute(
        insert(DocumentVersion).returning(DocumentVersion.document_id, DocumentVersion.id),
        [
            {
                "document_id": document_id,
                "number": 1,
                "file_name": f.file_name,
                "content_type": _guess_content_type(f.content_type, f.file_name),
                "size": f.size,
                "sha256": f.sha256,
                "description": "",
                "created_by": who.user_id,
                "created_at": now,
            }
            for document_id, f in zip(document_ids, files, strict=True)
        ],
    )
    version_of = {doc_id: version_id for doc_id, version_id in versions_returned}
    events.emit(
        session,
        *(
            events.DocumentCreated(
                project_id=project_id,
                document_id=document_id,
                version_id=version_of[document_id],
                folder_id=f.folder_id,
                details={"title": f.file_name, "fileName": f.file_name, "number": 1},
            )
            for document_id, f in zip(document_ids, files, strict=True)
        ),
    )
    await session.execute(
        update(Document),
        [
            {
                "id": document_id,
                "current_version_id": version_of[document_id],
                "current_sha256": f.sha256,
            }
            for document_id, f in zip(document_ids, files, strict=True)
        ],
    )
    return document_ids


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


def _guess_content_type(given: str | None, file_name: str) -> str:
    """The media type sent, or else the one the file name suggests."""
    if (usable := media_type(given)) is not None:
        return usable
    guessed, _ = mimetypes.guess_type(file_name)
    return guessed or "application/octet-stream"


def _version(
    document_id: int | None,
    number: int,
    file: NewFile,
    file_name: str,
    who: Principal,
    now: datetime,
    description: str = "",
) -> DocumentVersion:
    return DocumentVersion(
        document_id=document_id,
        number=number,
        file_name=file_name,
        content_type=content_type_of(file, file_name),
        size=file.spooled.size,
        sha256=file.spooled.sha256,
        description=description,
        created_by=who.user_id,
        created_at=now,
    )


async def add_version(
    session: AsyncSession,
    *,
    who: Principal,
    document_id: int,
    blobs: BlobStore,
    file: NewFile,
    project_id: int | None = None,
    description: str = "",
) -> tuple[DocumentView, DocumentVersion]:
    """Add a new current version. Concurrent calls get distinct numbers: the number comes from
    an UPDATE … RETURNING on the document row, which serialises them. As in `create`, the
    blob is stored before the transaction's first query."""
    file_name = clean_file_name(file.file_name)
    await blobs.put(file.spooled)
    await load(
        session,
        who=who,
        document_id=document_id,
        project_id=project_id,
        capability=Capability.DOCUMENTS_WRITE,
    )
    now = utcnow()
    number = await session.scalar(
        update(Document)
        .where(Document.id == document_id)
        .values(last_version_number=Document.last_version_number + 1, updated_at=now)
        .returning(Document.last_version_number)
    )
    if number is None:  # deleted between the check and the update
        raise NotFound(f"Document {document_id} not found.")
    version = _version(document_id, number, file, file_name, who, now, description)
    session.add(version)
    await session.flush()
    await session.execute(
        update(Document)
        .where(Document.id == document_id)
        .values(current_version_id=version.id, current_sha256=version.sha256)
    )
    document = await session.get(Document, document_id, populate_existing=True)
    assert document is not None
    events.emit(
        session,
        events.VersionAdded(
            project_id=document.project_id,
            document_id=document_id,
            version_id=version.id,
            details={"number": number, "fileName": version.file_name},
        ),
    )
    return await view(session, document), version


async def add_stored_versions(
    session: AsyncSession,
    *,
    who: Principal,
    project_id: int,
    changes: Sequence[tuple[int, StoredFile]],
) -> None:
    """Add each stored file as the new current version of its document (the bulk path of an
    import that finds a file changed). As in `create_many`, every blob must be durable first;
    numbers come from an UPDATE … RETURNING, as in `add_version`."""
    if not changes:
        return
    await access.require(session, who, project_id, Capability.DOCUMENTS_WRITE)
    now = utcnow()
    for document_id, file in changes:
        number = await session.scalar(
            update(Document)
            .where(Document.id == document_id, Document.project_id == project_id)
            .values(last_version_number=Document.last_version_number + 1, updated_at=now)
            .returning(Document.last_version_number)
        )
        if number is None:  # deleted since the import looked
            raise NotFound(f"Document {document_id} not found.")
        version = DocumentVersion(
            document_id=document_id,
            number=number,
            file_name=file.file_name,
            content_type=_guess_content_type(file.content_type, file.file_name),
            size=file.size,
            sha256=file.sha256,
            description="",
            created_by=who.user_id,
            created_at=now,
        )
        session.add(version)
        await session.flush()
        await session.execute(
            update(Document)
            .where(Document.id == document_id)
            .values(current_version_id=version.id, current_sha256=version.sha256)
        )


async def move(
    session: AsyncSession,
    *,
    who: Principal,
    project_id: int,
    document_id: int,
    folder_id: int | None,
) -> DocumentView:
    """Move a document into a folder of the same project (None: the project root)."""
    document = await load(
        session,
        who=who,
        document_id=document_id,
        project_id=project_id,
        capability=Capability.DOCUMENTS_WRITE,
    )
    if folder_id is not None:
        await folders.get(session, project_id=project_id, folder_id=folder_id)
    if document.folder_id != folder_id:
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
        document.updated_at = utcnow()
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
    document = await load(
        session,
        who=who,
        document_id=document_id,
        project_id=project_id,
        capability=Capability.DOCUMENTS_WRITE,
    )
    if title is not None:
        document.title = _check_title(title)
    if description is not None:
        document.description = description
    document.updated_at = utcnow()
    await session.flush()
    changed = {"title": title is not None, "description": description is not None}
    events.emit(
        session,
        events.DocumentUpdated(
            project_id=document.project_id,
            document_id=document_id,
            details={"changed": [name for name, yes in changed.items() if yes]},
        ),
    )
    return await view(session, document)


async def set_field(
    session: AsyncSession,
    *,
    who: Principal,
    project_id: int,
    document_id: int,
    field_id: int,
    value: Any,
) -> DocumentView:
    document = await load(
        session,
        who=who,
        document_id=document_id,
        project_id=project_id,
        capability=Capability.FIELDS_WRITE,
    )
    row = await fields.get(session, project_id=project_id, field_id=field_id)
    await fields.store_values(
        session, document=document, values={row.id: fields.coerce(row, value)}
    )
    document.updated_at = utcnow()
    await session.flush()
    events.emit(
        session,
        events.FieldSet(
            project_id=project_id, document_id=document_id, details={"fieldId": field_id}
        ),
    )
    return await view(session, document)


async def delete(
    session: AsyncSession, *, who: Principal, project_id: int, document_id: int
) -> None:
    """Delete a document and its versions; blobs no longer referenced are left to `gc`."""
    document = await load(
        session,
        who=who,
        document_id=document_id,
        project_id=project_id,
        capability=Capability.DOCUMENTS_DELETE,
        message="You do not have permission to delete this file",
    )
    await session.delete(document)
    await session.flush()
    events.emit(
        session,
        events.DocumentDeleted(
            project_id=document.project_id, document_id=document_id, folder_id=document.folder_id
        ),
    )


def visible_documents(who: Principal) -> Select[Document]:
    """All documents the caller may read, for cross-project lists (the v3 collection)."""
    stmt = select(Document)
    if not who.is_operator:
        stmt = stmt.where(Document.project_id.in_(access.visible_project_ids(who)))
    return stmt


async def count(session: AsyncSession, stmt: Select[Document]) -> int:
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    return int(total or 0)
