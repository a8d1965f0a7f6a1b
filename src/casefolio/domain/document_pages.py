"""A page of a project's documents (or one folder's): the read sync clients poll, as plain
rows in (updatedAt, id) order, built by one statement whatever the page's size.

The document, its view and the one-document read are in domain/documents.py.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Integer, Select, Table, bindparam, select, tuple_

from casefolio.db.live import LIVE
from casefolio.db.models import Document, DocumentVersion, Field, FieldValue, Folder
from casefolio.db.reads import Reader, read_all
from casefolio.domain import access
from casefolio.domain.documents import DocumentView, FieldEntry
from casefolio.domain.errors import NotFound
from casefolio.domain.pages import Page, PageRequest, encode_cursor
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.domain.rows import Columns, DocumentRow, FieldRow, VersionRow, labelled

# The tables behind the models: the page statement is built of columns only (no ORM loading).
_DOCUMENTS, _VERSIONS, _FIELDS, _VALUES, _FOLDERS = (
    cast(Table, model.__table__) for model in (Document, DocumentVersion, Field, FieldValue, Folder)
)
_UPDATED_AT = _DOCUMENTS.c.updated_at


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
    statement, names = _page_read(
        folder=folder_id is not None, since=changed_since is not None, after=page.after is not None
    )
    rows = await read_all(db, statement, parameters)
    columns = _page_columns(names)
    if rows:
        # A document of the project was found, so the project (and the folder) exist.
        access.scope_ranked(who, project_id, rows[0][columns.rank], Capability.DOCUMENTS_READ)
    else:
        found = await read_all(db, access.PROJECT_AND_RANK, parameters)
        if not found:
            raise NotFound(f"Project {project_id} not found.")
        access.scope_ranked(who, project_id, found[0][1], Capability.DOCUMENTS_READ)
        if folder_id is not None and not await read_all(db, _FOLDER_IN_PROJECT, parameters):
            raise NotFound(f"Folder {folder_id} not found in project {project_id}.")
    listed: dict[int, tuple[DocumentRow, VersionRow, list[FieldEntry]]] = {}
    document_id, field_id, value = columns.document_id, columns.field_id, columns.value
    for row in rows:
        if row[document_id] not in listed:
            listed[row[document_id]] = (columns.document(row), columns.version(row), [])
        if row[field_id] is not None:
            entry = FieldEntry(columns.field(row), row[value])
            listed[row[document_id]][2].append(entry)
    views = [DocumentView(d, v, tuple(entries)) for d, v, entries in listed.values()]
    if len(views) > page.limit:
        views = views[: page.limit]
        last = views[-1].document
        return Page(views, encode_cursor((last.updated_at, last.id)))
    return Page(views, None)


_FOLDER_IN_PROJECT = select(_FOLDERS.c.id).where(
    _FOLDERS.c.id == bindparam("folder_id"), _FOLDERS.c.project_id == bindparam("project_id")
)


class _PageColumns:
    """Where a page statement's columns are (domain/rows.py's Columns, looked up once)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        columns = Columns(names)
        self.document = columns.reader(DocumentRow, "document_")
        self.version = columns.reader(VersionRow, "version_")
        self.field = columns.reader(FieldRow, "field_")
        self.document_id = columns.position("document_id")
        self.field_id = columns.position("field_id")
        self.value = columns.position("value")
        self.rank = columns.position("rank")


@functools.cache
def _page_columns(names: tuple[str, ...]) -> _PageColumns:
    return _PageColumns(names)


@functools.cache
def _page_read(*, folder: bool, since: bool, after: bool) -> tuple[Select[Any], tuple[str, ...]]:
    """A page of documents (at most `limit`, a parameter, in keyset order), each joined to
    its current version and its field values: one row per value, or one row with no field,
    ordered by the page's key and then by field; last, the caller's rank on the project
    (the same in every row). Built once per shape (parameters only), with its column names
    (the fast reader hands back plain tuples, read by these names)."""
    documents = select(*_DOCUMENTS.columns).where(
        _DOCUMENTS.c.project_id == bindparam("project_id"), LIVE
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
    statement = (
        select(
            *(c.label(f"document_{c.key}") for c in page.columns),
            *labelled(_VERSIONS, "version_"),
            *labelled(_FIELDS, "field_"),
            _VALUES.c.value.label("value"),
            # Of the parameter, not of a row's column: the databases evaluate it once.
            access.role_rank_column(bindparam("project_id")).label("rank"),
        )
        .select_from(
            page.join(_VERSIONS, _VERSIONS.c.id == page.c.current_version_id)
            .outerjoin(_VALUES, _VALUES.c.document_id == page.c.id)
            .outerjoin(_FIELDS, _FIELDS.c.id == _VALUES.c.field_id)
        )
        .order_by(page.c.updated_at, page.c.id, _FIELDS.c.id)
    )
    return statement, tuple(c.name for c in statement.selected_columns)
