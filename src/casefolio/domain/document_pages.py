"""A page of a project's documents (or one folder's): the read sync clients poll, as plain
rows in (updatedAt, id) order, built by one statement whatever the page's size.

A listed document holds what the list shows and nothing else, its timestamps RFC 3339 text
cut from the database's text (db/types.py `instant_text`) and its field values the JSON text
stored: a page of a thousand documents is read, and answered, without a datetime or a model
per row, and the statement hands back only values the list shows (bench/README.md).

The document, its view and the one-document read are in domain/documents.py.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    Table,
    Text,
    bindparam,
    select,
    true,
    tuple_,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.sql.expression import Subquery, TableValuedAlias
from sqlalchemy.sql.selectable import LateralFromClause
from sqlalchemy.types import TypeEngine

from casefolio.db import reads, stamps
from casefolio.db.live import LIVE
from casefolio.db.models import Document, DocumentVersion, Field, FieldValue, is_id
from casefolio.db.reads import BatchedRead, Reader, dialect_name, read_all, read_rows
from casefolio.db.types import instant_of, instant_text, rfc3339_of_text
from casefolio.domain import access, folders
from casefolio.domain.errors import NotFound
from casefolio.domain.pages import Page, PageRequest, encode_cursor
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability

# The tables behind the models: the page statement is built of columns only (no ORM loading).
_DOCUMENTS, _VERSIONS, _FIELDS, _VALUES = (
    cast(Table, model.__table__) for model in (Document, DocumentVersion, Field, FieldValue)
)
_UPDATED_AT = _DOCUMENTS.c.updated_at


class ListedField(NamedTuple):
    """A field value of a listed document: the value as the JSON text stored (what the
    document's read parses, db/models.py FieldValue)."""

    id: int
    name: str
    type: str
    value_json: str


class ListedDocument(NamedTuple):
    """A document as a list shows it: its columns, its current version's (`version_`), and
    its field values in field order. Timestamps are RFC 3339 UTC text with milliseconds.
    Plain values only (no list, no datetime): two equal ListedDocuments show alike."""

    id: int
    project_id: int
    folder_id: int | None
    title: str
    description: str
    created_by: int | None
    created_at: str
    updated_at: str
    version_id: int
    version_document_id: int
    version_number: int
    version_file_name: str
    version_content_type: str
    version_size: int
    version_sha256: str
    version_created_by: int | None
    version_created_at: str
    fields: tuple[ListedField, ...]


#: Where a page statement's values are (`_page_statement`): a ListedDocument's columns but
#: its project (the page's own), its timestamps as instant_text; then the field value's
#: four and the caller's rank.
_UPDATED = 6
_FIELD = 16
_RANK = 20
_NO_FIELDS: tuple[ListedField, ...] = ()


# Tuples as the named tuples, without _make's length check: the statement's shape is checked
# once (`_page_read`), and a page of a thousand makes a thousand.
def _listed(values: Iterable[Any]) -> ListedDocument:
    return tuple.__new__(ListedDocument, values)


def _listed_field(values: Iterable[Any]) -> ListedField:
    return tuple.__new__(ListedField, values)


def _listed_document(
    row: Sequence[Any], project_id: int, fields: tuple[ListedField, ...]
) -> ListedDocument:
    """Given a document's first row of a page statement, its project and its fields, return
    it as listed: its three instants shown (rfc3339_of_text, from a memo)."""
    (
        document_id, folder_id, title, description, created_by, created_at, updated_at,
        version_id, version_document_id, number, file_name, content_type, size, sha256,
        version_created_by, version_created_at,
    ) = row[:_FIELD]  # fmt: skip
    shown = rfc3339_of_text
    return _listed(
        (
            document_id, project_id, folder_id, title, description, created_by,
            shown(created_at), shown(updated_at), version_id, version_document_id, number,
            file_name, content_type, size, sha256, version_created_by, shown(version_created_at),
            fields,
        )
    )  # fmt: skip


async def list_page(
    db: Reader,
    *,
    who: Principal,
    project_id: int,
    page: PageRequest,
    folder_id: int | None = None,
    changed_since: datetime | None = None,
) -> Page[ListedDocument]:
    """Documents of a project (or one folder) in (updatedAt, id) order, as ListedDocuments (the
    read sync clients poll: as ORM entities a page of 100 cost several times more).

    `changed_since` is inclusive: timestamps have millisecond resolution, and a sync client
    that sends back the newest updatedAt it saw must not miss a document sharing that instant.
    On PostgreSQL a page shows only documents whose updatedAt is settled (db/stamps.py):
    one stamped after a transaction still writing began waits until that one is over.

    One statement whatever the page's size: the page with each document's current version,
    field values and the caller's role on the project (`_page_read`); only a page that comes
    back empty needs the access check (and the folder's) of its own. A session or, cheaper,
    the database's StatementReader will do; on PostgreSQL the latter sends pages of one
    shape asked for while one is out together, as one statement (fastpath/batching.py).
    """
    parameters: dict[str, Any] = {"project_id": project_id, "user_id": who.user_id}
    if folder_id is not None:
        parameters["folder_id"] = folder_id
    if changed_since is not None:
        parameters["changed_since"] = changed_since
    if page.after is not None:
        parameters["after_updated_at"], parameters["after_id"] = page.after
    parameters["limit"] = page.limit + 1
    settled = dialect_name(db) == "postgresql"
    if settled:
        parameters["settled_before"] = (await read_all(db, stamps.SETTLED, {}))[0][0]
    read, _names = _page_read(
        folder=folder_id is not None,
        since=changed_since is not None,
        after=page.after is not None,
        settled=settled,
    )
    if _batchable(parameters):
        rows = await read_rows(db, read, parameters)
    else:
        # A value the driver would refuse fails alone, not every page of its batch.
        rows = await read_all(db, read.single, parameters)
    if rows:
        # A document of the project was found, so the project (and the folder) exist.
        access.scope_ranked(who, project_id, rows[0][_RANK], Capability.DOCUMENTS_READ)
    else:
        found = await read_all(db, access.PROJECT_AND_RANK, parameters)
        if not found:
            raise NotFound(f"Project {project_id} not found.")
        access.scope_ranked(who, project_id, found[0][1], Capability.DOCUMENTS_READ)
        if folder_id is not None:
            await folders.require_in_project(db, project_id=project_id, folder_id=folder_id)
    # A document's rows are consecutive (one per field value, in field order): each group's
    # first row and its fields. Documents past the page (its extra one) are not built.
    firsts: list[Sequence[Any]] = []
    values: list[tuple[ListedField, ...]] = []
    first: Sequence[Any] | None = None
    for row in rows:
        if first is None or row[0] != first[0]:
            first = row
            firsts.append(row)
            values.append(_NO_FIELDS)
        if row[_FIELD] is not None:
            values[-1] += (_listed_field(row[_FIELD:_RANK]),)
    shown = firsts[: page.limit]
    listed = [
        _listed_document(row, project_id, fields)
        for row, fields in zip(shown, values, strict=False)
    ]
    if len(firsts) > page.limit:
        last = shown[-1]
        # The stored instant, not the shown one (cut to the millisecond): documents a few
        # microseconds apart page one after another.
        return Page(listed, encode_cursor((instant_of(last[_UPDATED]), last[0])))
    return Page(listed, None)


def _batchable(parameters: dict[str, Any]) -> bool:
    """Whether every value of a page read is one the driver takes (ids in range, aware
    timestamps), so that it may share a statement with other callers' reads."""
    for name in ("project_id", "folder_id", "after_id"):
        value = parameters.get(name)
        if value is not None and not (isinstance(value, int) and is_id(value)):
            return False
    for name in ("changed_since", "after_updated_at", "settled_before"):
        value = parameters.get(name)
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            return False
    user_id = parameters["user_id"]
    return user_id is None or (isinstance(user_id, int) and is_id(user_id))


#: Pages one statement reads at most on PostgreSQL: a page may be a thousand rows.
PAGES_BATCHED = 16

#: A page read's keys and their types, as key_table takes them (`limit` is one more than the
#: page's size: the extra row says whether there is a next page).
_PAGE_KEYS: dict[str, TypeEngine[Any]] = {
    "project_id": BigInteger(),
    "user_id": BigInteger(),
    "limit": Integer(),
    "folder_id": BigInteger(),
    "changed_since": _UPDATED_AT.type,
    "after_updated_at": _UPDATED_AT.type,
    "after_id": BigInteger(),
    "settled_before": _UPDATED_AT.type,
}


@functools.cache
def _page_read(
    *, folder: bool, since: bool, after: bool, settled: bool = False
) -> tuple[BatchedRead, tuple[str, ...]]:
    """The page read of one shape (which filters it has), for one caller (`single`, bind
    parameters) and for many (`many`, each caller's page a LATERAL subquery of key_table's
    row), with the column names (the fast reader hands back plain tuples, read by these).
    Built once per shape."""
    wanted = ["project_id", "user_id", "limit"]
    wanted += ["folder_id"] if folder else []
    wanted += ["changed_since"] if since else []
    wanted += ["after_updated_at", "after_id"] if after else []
    wanted += ["settled_before"] if settled else []
    single_keys = {name: bindparam(name, type_=_PAGE_KEYS[name]) for name in wanted}
    single = _page_statement(single_keys)
    batch = reads.key_table(**{name: _PAGE_KEYS[name] for name in wanted})
    many = _page_statement({name: batch.c[name] for name in wanted}, batch)
    read = BatchedRead(single=single, many=many, keys=frozenset(wanted), max_batch=PAGES_BATCHED)
    names = tuple(c.name for c in single.selected_columns)
    places = (names.index("document_updated_at"), names.index("field_id"), names.index("rank"))
    if places != (_UPDATED, _FIELD, _RANK):
        raise RuntimeError(f"the page statement's columns moved: {names}")
    return read, names


#: The document columns a page reads (what it shows, its keyset's, its current version's id).
_PAGED = (
    "id",
    "project_id",
    "folder_id",
    "title",
    "description",
    "created_by",
    "created_at",
    "updated_at",
    "current_version_id",
)
_VERSION_SHOWN = (
    "id",
    "document_id",
    "number",
    "file_name",
    "content_type",
    "size",
    "sha256",
    "created_by",
)


def _page_statement(
    keys: Mapping[str, ColumnElement[Any]], batch: TableValuedAlias | None = None
) -> Select[Any]:
    """A page of documents (at most `limit`, in keyset order), each joined to its current
    version and its field values: one row per value, or one row with no field, ordered by
    the page's key and then by field; last, the caller's rank on the project (the same in
    every row). `keys` are the filters' values: parameters, or with `batch` (key_table) its
    columns, and then each key's page follows the one before, its position after its
    columns."""
    documents = select(*(_DOCUMENTS.c[name] for name in _PAGED)).where(
        _DOCUMENTS.c.project_id == keys["project_id"], LIVE
    )
    if "folder_id" in keys:
        documents = documents.where(_DOCUMENTS.c.folder_id == keys["folder_id"])
    if "changed_since" in keys:
        documents = documents.where(_DOCUMENTS.c.updated_at >= keys["changed_since"])
    if "settled_before" in keys:
        documents = documents.where(_DOCUMENTS.c.updated_at < keys["settled_before"])
    if "after_id" in keys:
        documents = documents.where(
            tuple_(_UPDATED_AT, _DOCUMENTS.c.id)
            > tuple_(keys["after_updated_at"], keys["after_id"])
        )
    documents = documents.order_by(_UPDATED_AT, _DOCUMENTS.c.id).limit(keys["limit"])
    # Of the keys, not of a row's column: the databases evaluate it once per page.
    rank_read = access.role_rank_column(keys["project_id"], keys["user_id"])
    rank: ColumnElement[Any] = rank_read
    page: Subquery | LateralFromClause
    if batch is None:
        page = documents.subquery("page")
        pages: FromClause = page
    else:
        # The rank's aggregate itself as a LATERAL of its own: PostgreSQL pulls a plain
        # `SELECT (scalar subquery)` up into the join, and then ran the subquery for every
        # row of every page (EXPLAIN: loops = rows); an aggregate stays a subquery, run once
        # per page.
        ranks = rank_read.element.lateral("ranks")
        [rank] = ranks.c
        page = documents.lateral("page")
        pages = batch.join(ranks, true()).join(page, true())
    versions = _VERSIONS.c
    # Only what the list shows, each once: not the project (the page's key), nor the
    # updatedAt again for the cursor (instant_text is the stored instant).
    shown = [
        page.c.id.label("document_id"),
        *(page.c[name].label(f"document_{name}") for name in _PAGED[2:6]),
        instant_text(page.c.created_at).label("document_created_at"),
        instant_text(page.c.updated_at).label("document_updated_at"),
        *(versions[name].label(f"version_{name}") for name in _VERSION_SHOWN),
        instant_text(versions.created_at).label("version_created_at"),
        _FIELDS.c.id.label("field_id"),
        _FIELDS.c.name.label("field_name"),
        _FIELDS.c.type.label("field_type"),
        # The stored JSON text, parsed only to be shown (api/v1/documents_render.py).
        sql_cast(_VALUES.c.value, Text).label("value_json"),
        rank.label("rank"),
    ]
    statement = select(*shown).select_from(
        pages.join(_VERSIONS, _VERSIONS.c.id == page.c.current_version_id)
        .outerjoin(_VALUES, _VALUES.c.document_id == page.c.id)
        .outerjoin(_FIELDS, _FIELDS.c.id == _VALUES.c.field_id)
    )
    if batch is not None:
        statement = statement.add_columns(batch.c[reads.POSITION]).order_by(batch.c[reads.POSITION])
    return statement.order_by(page.c.updated_at, page.c.id, _FIELDS.c.id)
