"""Filing: the one way a document or a version is written.

An upload, a replacement, an import and a claimed OpenProject attachment all end in `file()`,
which writes the document and version rows, the document's current-version columns and its
`updated_at`, for one file or a batch, on both databases, and returns what changed as domain
events (domain/events.py). When a version leaves or returns from the trash, `set_current()`
points those columns at the newest live version again; nothing else writes them. The
front doors (domain/intake.py) only prepare: clean names, make the blob durable, check
access, fields and folders.

Every blob is made durable before its row is written, so a commit can only ever point at
bytes that exist; and before the first query, so SQLite's write lock is not held across
its fsyncs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from casefolio.db.live import live, live_version
from casefolio.db.models import Document, DocumentVersion, FieldValue
from casefolio.db.stamps import stamp
from casefolio.db.types import utcnow
from casefolio.domain import events
from casefolio.domain.access import ProjectScope
from casefolio.domain.errors import Invalid, NotFound
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.domain.rows import DocumentRow, VersionRow

_DOCUMENTS, _VERSIONS, _VALUES = (
    cast(Table, model.__table__) for model in (Document, DocumentVersion, FieldValue)
)
UNCLAIMED_NUMBER = 0  # real version numbers start at 1


# ---- what is filed ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """Bytes durable in the blob store, under a clean file name and a content type."""

    file_name: str
    sha256: str
    size: int
    content_type: str


@dataclass(frozen=True)
class NewDocument:
    content: Content
    title: str
    folder_id: int | None = None
    description: str = ""
    field_values: Mapping[int, Any] = field(default_factory=dict)  # resolved, by field id


@dataclass(frozen=True)
class NewVersion:
    """A new current version of `document_id`. With `unclaimed_id`, the caller's own
    unclaimed upload of that id becomes it (keeping its id and `uploaded_at`)."""

    document_id: int
    content: Content
    description: str = ""
    unclaimed_id: int | None = None
    uploaded_at: datetime | None = None


@dataclass(frozen=True)
class Filed:
    """What `file()` wrote: new documents, then every new version, in the order given."""

    documents: list[DocumentRow]
    versions: list[VersionRow]
    events: list[events.DomainEvent]


# ---- the one write -------------------------------------------------------------------------


async def file(
    session: AsyncSession,
    scope: ProjectScope,
    *,
    documents: Sequence[NewDocument] = (),
    versions: Sequence[NewVersion] = (),
) -> Filed:
    """Write new documents (each with version 1) and new current versions of documents of
    the scope's project. Every blob must be durable already; folders and field values must
    have been checked. Concurrent calls get distinct version numbers: they come from an
    UPDATE … RETURNING on the document row, which serialises them."""
    scope.require(Capability.DOCUMENTS_WRITE)
    now = await stamp(session)
    conn = await session.connection()
    new_documents, first_versions = await _insert_documents(conn, scope, documents, now)
    added = await _add_versions(conn, scope, versions, now)
    values = [
        {"document_id": row.id, "field_id": field_id, "value": value}
        for row, new in zip(new_documents, documents, strict=True)
        for field_id, value in sorted(new.field_values.items())
        if value is not None
    ]
    if values:
        await conn.execute(insert(_VALUES), values)
    happened: list[events.DomainEvent] = [
        events.DocumentCreated(
            project_id=scope.project_id,
            document_id=d.id,
            version_id=v.id,
            folder_id=d.folder_id,
            details={"title": d.title, "fileName": v.file_name, "number": 1},
        )
        for d, v in zip(new_documents, first_versions, strict=True)
    ]
    happened += [
        events.VersionAdded(
            project_id=scope.project_id,
            document_id=v.document_id,
            version_id=v.id,
            details={"number": v.number, "fileName": v.file_name},
        )
        for v in added
    ]
    # Recorded (audit, change feed, webhooks) in this transaction, before it commits.
    events.emit(session, *happened)
    return Filed(new_documents, first_versions + added, happened)


async def _insert_documents(
    conn: AsyncConnection, scope: ProjectScope, new: Sequence[NewDocument], now: datetime
) -> tuple[list[DocumentRow], list[VersionRow]]:
    if not new:
        return [], []
    rows: list[dict[str, Any]] = [
        {
            "project_id": scope.project_id,
            "folder_id": n.folder_id,
            "title": n.title,
            "description": n.description,
            "current_sha256": n.content.sha256,
            "last_version_number": 1,
            "created_by": scope.user_id,
            "created_at": now,
            "updated_at": now,
            "trashed_at": None,
        }
        for n in new
    ]
    firsts = [_version_values(None, 1, n.content, "", scope.user_id, now) for n in new]
    if conn.dialect.name == "postgresql" and len(new) == 1:
        # Each statement is a round trip on PostgreSQL: one statement writes both rows.
        params = {f"document_{k}": v for k, v in rows[0].items()}
        params.update({f"version_{k}": v for k, v in firsts[0].items() if k != "document_id"})
        document_id, version_id = (await conn.execute(_INSERT_DOCUMENT_AND_VERSION, params)).one()
        ids = [(document_id, version_id)]
    else:
        ids = await _insert_in_three(conn, rows, firsts)
    documents = [
        DocumentRow(id=d, current_version_id=v, **row)
        for (d, v), row in zip(ids, rows, strict=True)
    ]
    versions = [
        VersionRow(id=v, **{**first, "document_id": d})
        for (d, v), first in zip(ids, firsts, strict=True)
    ]
    return documents, versions


async def _insert_in_three(
    conn: AsyncConnection, rows: list[dict[str, Any]], firsts: list[dict[str, Any]]
) -> list[tuple[int, int]]:
    """Documents, their first versions, then the current-version column: three statements
    however many documents. RETURNING order is not guaranteed (and asking SQLAlchemy to
    sort it falls back to one INSERT per row), so each document row carries a unique
    placeholder in current_sha256 that ties its returned id to its file, until the UPDATE."""
    if len(rows) == 1:
        # One upload: plain single-row statements (a list of one would go through
        # SQLAlchemy's batched insert-with-RETURNING and executemany, several times the
        # work, all of it under SQLite's write lock).
        document_id = (await conn.execute(_INSERT_DOCUMENTS, rows[0])).one()[0]
        version_id = (
            await conn.execute(_INSERT_VERSIONS, {**firsts[0], "document_id": document_id})
        ).one()[1]
        await conn.execute(
            _SET_CURRENT,
            {"document": document_id, "version": version_id, "sha256": rows[0]["current_sha256"]},
        )
        return [(document_id, version_id)]
    placeholders = [{**row, "current_sha256": f"pending:{i}"} for i, row in enumerate(rows)]
    returned = await conn.execute(_INSERT_DOCUMENTS, placeholders)
    by_placeholder = {placeholder: doc_id for doc_id, placeholder in returned}
    document_ids = [by_placeholder[f"pending:{i}"] for i in range(len(rows))]
    returned = await conn.execute(
        _INSERT_VERSIONS,
        [{**v, "document_id": d} for d, v in zip(document_ids, firsts, strict=True)],
    )
    version_of = {doc_id: version_id for doc_id, version_id in returned}
    ids = [(d, version_of[d]) for d in document_ids]
    await conn.execute(
        _SET_CURRENT,
        [
            {"document": d, "version": v, "sha256": row["current_sha256"]}
            for (d, v), row in zip(ids, rows, strict=True)
        ],
    )
    return ids


async def _add_versions(
    conn: AsyncConnection, scope: ProjectScope, new: Sequence[NewVersion], now: datetime
) -> list[VersionRow]:
    """Number each new version from its document's row (whose lock serialises concurrent
    writers), write or claim its row, and make each document's last one current."""
    by_document: dict[int, list[NewVersion]] = {}
    for n in new:
        by_document.setdefault(n.document_id, []).append(n)
    added: list[VersionRow] = []
    for document_id, wanted in by_document.items():
        last = await conn.scalar(
            _NUMBER_VERSIONS,
            {
                "document": document_id,
                "project": scope.project_id,
                "count": len(wanted),
                "now": now,
            },
        )
        if last is None:  # deleted since the caller looked
            raise NotFound(f"Document {document_id} not found.")
        for number, n in enumerate(wanted, start=last - len(wanted) + 1):
            values = _version_values(
                document_id, number, n.content, n.description, scope.user_id, now
            )
            if n.unclaimed_id is None:
                version_id = (await conn.execute(_INSERT_VERSIONS, values)).one()[1]
            else:
                version_id = await _claim(conn, n.unclaimed_id, document_id, number)
                values.update(description=n.description, created_at=n.uploaded_at or now)
            added.append(VersionRow(id=version_id, **values))
        current = added[-1]
        await conn.execute(
            _SET_CURRENT, {"document": document_id, "version": current.id, "sha256": current.sha256}
        )
    return added


async def set_current(session: AsyncSession, *, document_id: int) -> int:
    """Point the document's current-version columns at its newest version not in the trash
    (after a version went to the trash or came back from it); return that version's id.
    The caller holds the document row's lock and has made sure one live version is left."""
    conn = await session.connection()
    version_id, sha256 = (await conn.execute(_NEWEST_LIVE, {"document": document_id})).one()
    await conn.execute(
        _SET_CURRENT, {"document": document_id, "version": version_id, "sha256": sha256}
    )
    return int(version_id)


async def _claim(conn: AsyncConnection, version_id: int, document_id: int, number: int) -> int:
    # Only a row that is still unclaimed is taken, so two claims cannot both win.
    taken = await conn.execute(
        _CLAIM, {"version": version_id, "document": document_id, "new_number": number}
    )
    if taken.rowcount != 1:
        raise Invalid(
            f"Attachment {version_id} was claimed by another request.",
            [{"field": "attachments", "message": str(version_id)}],
        )
    return version_id


def _version_values(
    document_id: int | None,
    number: int,
    content: Content,
    description: str,
    user_id: int,
    now: datetime,
) -> dict[str, Any]:
    return {
        "document_id": document_id,
        "number": number,
        "file_name": content.file_name,
        "content_type": content.content_type,
        "size": content.size,
        "sha256": content.sha256,
        "description": description,
        "created_by": user_id,
        "created_at": now,
        "trashed_at": None,
    }


async def store_unclaimed(
    session: AsyncSession, *, who: Principal, content: Content, description: str = ""
) -> tuple[VersionRow, list[events.DomainEvent]]:
    """Write an upload that no document holds yet (domain/unclaimed.py): a version row of
    no document, numbered 0, that a later `file()` may claim."""
    values = _version_values(None, UNCLAIMED_NUMBER, content, description, who.user_id, utcnow())
    conn = await session.connection()
    version_id = (await conn.execute(_INSERT_VERSIONS, values)).one()[1]
    # No event yet: an unclaimed upload belongs to no project until a document claims it
    # (then `file()` reports the version added).
    return VersionRow(id=version_id, **values), []


# Built once: constructing a statement costs more than SQLite takes to run it.
_INSERT_DOCUMENTS = insert(_DOCUMENTS).returning(_DOCUMENTS.c.id, _DOCUMENTS.c.current_sha256)
_INSERT_VERSIONS = insert(_VERSIONS).returning(_VERSIONS.c.document_id, _VERSIONS.c.id)
_SET_CURRENT = (
    update(_DOCUMENTS)
    .where(_DOCUMENTS.c.id == bindparam("document"))
    .values(current_version_id=bindparam("version"), current_sha256=bindparam("sha256"))
)
_NUMBER_VERSIONS = (
    update(_DOCUMENTS)
    .where(
        _DOCUMENTS.c.id == bindparam("document"),
        _DOCUMENTS.c.project_id == bindparam("project"),
        live(_DOCUMENTS),
    )
    .values(
        last_version_number=_DOCUMENTS.c.last_version_number + bindparam("count"),
        updated_at=bindparam("now"),
    )
    .returning(_DOCUMENTS.c.last_version_number)
)
_NEWEST_LIVE = (
    select(_VERSIONS.c.id, _VERSIONS.c.sha256)
    .where(_VERSIONS.c.document_id == bindparam("document"), live_version(_VERSIONS))
    .order_by(_VERSIONS.c.number.desc())
    .limit(1)
)
_CLAIM = (
    update(_VERSIONS)
    .where(_VERSIONS.c.id == bindparam("version"), _VERSIONS.c.document_id.is_(None))
    .values(document_id=bindparam("document"), number=bindparam("new_number"))
)


def _one_statement_insert() -> Insert:
    """PostgreSQL: a new document and its first version in one statement.

    The document's INSERT takes the version's id from its sequence, and the version's
    INSERT reads the new document from a CTE; the foreign key is checked at the end of the
    statement, when both rows exist. Parameters: `document_<column>` and `version_<column>`.
    """
    given_document = [c for c in _DOCUMENTS.columns if c.key not in ("id", "current_version_id")]
    new_document = (
        insert(_DOCUMENTS)
        .values(
            {
                **{c.key: bindparam(f"document_{c.key}", type_=c.type) for c in given_document},
                "current_version_id": func.nextval(
                    func.pg_get_serial_sequence(_VERSIONS.name, "id")
                ),
            }
        )
        .returning(_DOCUMENTS.c.id, _DOCUMENTS.c.current_version_id)
        .cte("new_document")
    )
    given = [c for c in _VERSIONS.columns if c.key not in ("id", "document_id")]
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
