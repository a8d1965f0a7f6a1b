"""Searching: documents whose text matches a query, best first, as the caller may see them.

Access is part of the statement (`searchable`): what the caller cannot read is never
returned, counted or highlighted, and paging stays keyset paging. A page is two statements:
the page's keys (score, version id) with every filter, then the snippets of just those
versions and their documents' views (hits.py).
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Float,
    Integer,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from casefolio.db.live import live, live_version
from casefolio.db.models import (
    Document,
    DocumentVersion,
    Field,
    FieldValue,
    Folder,
)
from casefolio.domain import access, fields, folders, pages
from casefolio.domain.errors import Invalid, NotFound
from casefolio.domain.pages import decode_cursor, encode_cursor
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.search import fulltext, hits
from casefolio.search import query as language
from casefolio.search.fulltext import FTS, FTS_NAME, TEXTS, TSV

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: The most matches one query scores and pages through: of more, the first this many the
#: caller may read (newest first on SQLite, in table order on PostgreSQL; docs/api.md).
RANK_CANDIDATES = 1000
#: The same for a query with a phrase: PostgreSQL's index finds the rows with all of its
#: words, and each must be read to see whether they are next to each other.
PHRASE_CANDIDATES = 250
#: PostgreSQL's `work_mem` while a search runs (PostgreSQL): the memory of the bitmap the GIN
#: index scan builds of every row with the query's words. Past it the bitmap keeps whole
#: pages ("lossy"), which is cheaper to build than the exact bitmap the default 4 MB allows
#: first and then converts (bench/README.md, issue 25's third pass).
SEARCH_WORK_MEM = "256kB"

DOCUMENTS, VERSIONS, _VALUES = (
    cast(Table, model.__table__) for model in (Document, DocumentVersion, FieldValue)
)


@dataclass(frozen=True)
class Search:
    """What to look for: the query text and the optional filters of the endpoint."""

    q: str
    project_id: int | None = None
    folder_id: int | None = None
    field_id: int | None = None
    field_value: str | None = None
    after_date: datetime | None = None
    all_versions: bool = False
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    #: False: no snippets (a list of documents filtered by `q`, up to pages.MAX_LIMIT long).
    snippets: bool = True


def searchable(
    statement: Select[Any], version_id: ColumnElement[int], who: Principal, *, all_versions: bool
) -> Select[Any]:
    """THE rule of what a search may find, in one place: given a statement and the column of
    a matched version's id, add the document (and, with `all_versions`, the version) and keep
    what the caller may read: the document's current version (any of its versions with
    `all_versions`) of a document not in the trash, in a project the caller can see.

    The document is added by conditions, not a JOIN, so that `statement` may be a subquery
    correlated to the matches (`version_id` a column of an outer query): one look-up by key
    per match, which no planner can turn into a hash or sort of every document."""
    if all_versions:
        statement = statement.join_from(
            DOCUMENTS, VERSIONS, VERSIONS.c.document_id == DOCUMENTS.c.id
        ).where(VERSIONS.c.id == version_id)
        # A trashed version is out of every read too (a current one never is trashed).
        statement = statement.where(live_version(VERSIONS))
    else:
        # By ix_documents_current_version.
        statement = statement.where(DOCUMENTS.c.current_version_id == version_id)
    # A trashed document is out of every read, search included (db/live.py).
    statement = statement.where(live(DOCUMENTS))
    if not who.is_operator:
        statement = statement.where(DOCUMENTS.c.project_id.in_(access.visible_project_ids(who)))
    return statement


def current_text_matches(text: str, *, postgres: bool) -> ColumnElement[bool]:
    """A condition on a document: its current version's text matches `text`, a query in the
    search language (Invalid if it is not one). For lists that keep their own order, paging
    and access rule (`/api/v3` documents' `search` filter); no score, no candidate bound."""
    parsed = language.parse(text)
    if postgres:
        matched = fulltext.tsquery(literal(language.to_tsquery(parsed)))
        return exists().where(
            TEXTS.c.version_id == DOCUMENTS.c.current_version_id, TSV.op("@@")(matched)
        )
    return DOCUMENTS.c.current_version_id.in_(
        select(FTS.c.rowid).where(FTS_NAME.op("MATCH")(literal(language.to_fts5(parsed))))
    )


async def search(session: AsyncSession, who: Principal, request: Search) -> pages.Page[hits.Hit]:
    """A page of hits, best first; Invalid for a bad query, filter or cursor, NotFound for
    a project or field the caller cannot see."""
    parsed = language.parse(request.q)
    most = MAX_LIMIT if request.snippets else pages.MAX_LIMIT
    if not 1 <= request.limit <= most:
        raise Invalid(f"limit must be 1 to {most}.", [{"field": "limit", "message": "range"}])
    after = _after(request.cursor)
    postgres = session.get_bind().dialect.name == "postgresql"
    compiled = language.to_tsquery(parsed) if postgres else language.to_fts5(parsed)
    parameters: dict[str, Any] = {
        "q": compiled,
        "limit": request.limit + 1,
        "candidates": PHRASE_CANDIDATES if _has_phrase(parsed) else RANK_CANDIDATES,
    }
    # Matches, then the first RANK_CANDIDATES (PHRASE_CANDIDATES) of them the caller may
    # read, every filter applied, and only those are scored and sorted: the work of a query
    # of common words stays bounded as the collection grows.
    if postgres:
        # The matches on their own (MATERIALIZED), planned without the LIMIT: the GIN index
        # drives them (a LIMIT would tempt the planner into reading the table in key order
        # and testing every row), and PostgreSQL runs a CTE only as far as its rows are
        # read, so only the rows up to the LIMIT are fetched, checked and scored. Each
        # match's document is then found by key (ix_documents_current_version).
        tsquery = fulltext.tsquery(bindparam("q"))
        found = (
            select(
                TEXTS.c.version_id.label("version_id"),
                sql_cast(func.ts_rank_cd(TSV, tsquery), Float).label("score"),
            )
            .where(TSV.op("@@")(tsquery))
            .cte("matched")
            .prefix_with("MATERIALIZED")
        )
        # Each match's document by key, in a LATERAL subquery: a nested loop by construction
        # (as a join, the planner may sort every match or hash every document instead).
        document = await _filters(
            session,
            who,
            request,
            searchable(
                select(DOCUMENTS.c.id.label("document_id")),
                found.c.version_id,
                who,
                all_versions=request.all_versions,
            ),
            parameters,
        )
        readable = document.limit(1).lateral("readable")
        candidates: Select[Any] = select(
            found.c.version_id, readable.c.document_id, found.c.score
        ).select_from(found.join(readable, true()))
    else:
        # FTS5 walks its index newest version first (rowid order) and stops at the LIMIT;
        # bm25() scores the rows that pass (it does count each phrase's matches once, for
        # its IDF: bench/README.md).
        version_id = FTS.c.rowid
        candidates = searchable(
            select(
                version_id.label("version_id"),
                DOCUMENTS.c.id.label("document_id"),
                sql_cast(-func.bm25(FTS_NAME), Float).label("score"),
            )
            .select_from(FTS)
            .where(FTS_NAME.op("MATCH")(bindparam("q")))
            .order_by(version_id.desc()),
            version_id,
            who,
            all_versions=request.all_versions,
        )
        candidates = await _filters(session, who, request, candidates, parameters)
    limit: ColumnElement[int] = bindparam("candidates", type_=Integer())
    if postgres:
        # The bitmap's memory, set for this statement only (`set_config(…, true)` lasts to
        # the end of the transaction: the statement's own on a reader, which runs without
        # one). A LIMIT's value is computed before its first row is fetched, so before the
        # index scan below it builds its bitmap.
        parameters["work_mem"] = SEARCH_WORK_MEM
        configured = func.set_config("work_mem", bindparam("work_mem"), true())
        limit = case((configured.is_(None), 0), else_=limit)
    ranked = candidates.limit(limit).cte("candidates").prefix_with("MATERIALIZED")
    page: Select[Any] = select(ranked.c.version_id, ranked.c.document_id, ranked.c.score)
    if after is not None:
        parameters["after_score"], parameters["after_id"] = after
        after_score = bindparam("after_score", type_=Float())
        page = page.where(
            or_(
                ranked.c.score < after_score,
                and_(ranked.c.score == after_score, ranked.c.version_id > bindparam("after_id")),
            )
        )
    page = page.order_by(ranked.c.score.desc(), ranked.c.version_id).limit(bindparam("limit"))
    rows = (await session.execute(page, parameters)).all()
    more = len(rows) > request.limit
    rows = rows[: request.limit]
    shown = await hits.of_rows(session, rows, compiled if request.snippets else None, postgres)
    cursor = None
    if more:
        last = rows[-1]
        cursor = encode_cursor((float(last.score).hex(), int(last.version_id)))
    return pages.Page(shown, cursor)


def _has_phrase(parsed: language.Query) -> bool:
    return any(len(term.tokens) > 1 for clause in parsed.clauses for term in clause.include)


def _after(cursor: str | None) -> tuple[float, int] | None:
    if cursor is None:
        return None
    score_hex, version_id = decode_cursor(cursor, (str, int))
    try:
        score = float.fromhex(score_hex)
    except (ValueError, OverflowError):  # not a float's hex, or one past the largest float
        score = math.nan
    if not math.isfinite(score) or version_id < 0:
        raise Invalid("The cursor is not valid. Use the `cursor` from the previous page.")
    return score, int(version_id)


async def _filters(
    session: AsyncSession,
    who: Principal,
    request: Search,
    statement: Select[Any],
    parameters: dict[str, Any],
) -> Select[Any]:
    if request.project_id is not None:
        await access.scope(session, who, request.project_id, Capability.DOCUMENTS_READ)
        statement = statement.where(DOCUMENTS.c.project_id == bindparam("project_id"))
        parameters["project_id"] = request.project_id
    if request.folder_id is not None:
        await _require_folder(session, who, request.folder_id, request.project_id)
        statement = statement.where(DOCUMENTS.c.folder_id == bindparam("folder_id"))
        parameters["folder_id"] = request.folder_id
    if request.after_date is not None:
        statement = statement.where(
            DOCUMENTS.c.updated_at >= bindparam("after_date", type_=DOCUMENTS.c.updated_at.type)
        )
        parameters["after_date"] = request.after_date
    if (request.field_id is None) != (request.field_value is None):
        raise Invalid(
            "fieldId and fieldValue go together: give both or neither.",
            [{"field": "fieldValue" if request.field_id else "fieldId", "message": "missing"}],
        )
    if request.field_id is not None and request.field_value is not None:
        matches = await _field_matches(
            session, who, request.field_id, request.field_value, parameters
        )
        statement = statement.where(
            exists().where(
                _VALUES.c.document_id == DOCUMENTS.c.id,
                _VALUES.c.field_id == bindparam("field_id"),
                matches,
            )
        )
        parameters["field_id"] = request.field_id
    return statement


async def _require_folder(
    session: AsyncSession, who: Principal, folder_id: int, project_id: int | None
) -> None:
    """NotFound for a folder the caller cannot see, or not of `project_id` (whose access is
    checked): as for a field, a filter by it is refused rather than answered with nothing."""
    if project_id is not None:
        await folders.require_in_project(session, project_id=project_id, folder_id=folder_id)
        return
    in_project = await session.scalar(select(Folder.project_id).where(Folder.id == folder_id))
    if in_project is None or not await _sees(session, who, in_project):
        raise NotFound(f"Folder {folder_id} not found.")


async def _sees(session: AsyncSession, who: Principal, project_id: int) -> bool:
    """Whether the caller may see the project a filter's folder or field belongs to."""
    return who.is_operator or await access.project_role(session, who, project_id) is not None


async def _field_matches(
    session: AsyncSession,
    who: Principal,
    field_id: int,
    value: str,
    parameters: dict[str, Any],
) -> ColumnElement[bool]:
    """The condition a stored value meets when it is `value` (a query parameter) in the
    field's type; its parameters go into `parameters`."""
    field = await session.get(Field, field_id)
    if field is None or not await _sees(session, who, field.project_id):
        raise NotFound(f"Field {field_id} not found.")
    stored_json = sql_cast(_VALUES.c.value, Text).in_(bindparam("field_json", expanding=True))
    if field.type == "number":
        try:
            number = float(value)
        except ValueError:
            raise Invalid(
                f"Field {field_id} holds numbers; fieldValue is not one.",
                [{"field": "fieldValue", "message": "expected a number"}],
            ) from None
        if session.get_bind().dialect.name != "postgresql":
            # SQLite keeps a JSON number as a REAL or INTEGER (the column's affinity), whose
            # text is SQLite's own ("1.0e+300"): there, numbers are compared as numbers.
            parameters["field_number"] = number
            return sql_cast(_VALUES.c.value, Float) == bindparam("field_number", type_=Float)
        forms = {json.dumps(number)}
        if number.is_integer():
            forms.add(json.dumps(int(number)))
        parameters["field_json"] = sorted(forms)
        return stored_json
    if field.type == "boolean":
        if value not in ("true", "false"):
            raise Invalid(
                f"Field {field_id} holds true or false.",
                [{"field": "fieldValue", "message": "expected true or false"}],
            )
        parameters["field_json"] = [value]
        return stored_json
    if field.type == "choice":
        value = fields.choice_for(field, value) or value  # as a value is stored (coerce)
        parameters["field_json"] = [json.dumps(value)]
        return stored_json
    # Text is stored composed (fields.coerce); a value set before that may be decomposed.
    forms = {unicodedata.normalize(form, value) for form in ("NFC", "NFD")}
    parameters["field_json"] = sorted(json.dumps(form) for form in forms)
    return stored_json
