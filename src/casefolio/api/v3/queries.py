"""`sortBy` and `filters` of the v3 collections, parsed from OpenProject's JSON forms into
SQL clauses over the visibility queries the domain provides."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fastapi.exceptions import RequestValidationError
from sqlalchemy import ColumnElement, Select, false, not_, or_, true
from sqlalchemy.orm import InstrumentedAttribute

from casefolio.api import jsonbody
from casefolio.api.errors import describe_validation
from casefolio.api.v3.problems import invalid_query
from casefolio.api.v3.representers import PROJECT_IDENTIFIER_PREFIX
from casefolio.db.models import MAX_ID, Document, Project
from casefolio.db.types import lowered, lowered_text
from casefolio.domain import documents, projects
from casefolio.domain.errors import Invalid
from casefolio.domain.principal import Principal
from casefolio.search import service as search

Clause = ColumnElement[bool]
Filter = Callable[[str, list[str]], Clause]
# OpenProject's documents sort by id, created_at and updated_at
# (Queries::Documents::Orders::DefaultOrder). A project's documents in updated_at order are
# a walk of ix_documents_project_updated (project_id, updated_at, id).
_DOCUMENT_SORTS: dict[str, InstrumentedAttribute[Any]] = {
    "id": Document.id,
    "created_at": Document.created_at,
    "createdAt": Document.created_at,
    "updated_at": Document.updated_at,
    "updatedAt": Document.updated_at,
}
_PROJECT_SORTS: dict[str, InstrumentedAttribute[Any]] = {
    "id": Project.id,
    "name": Project.name,
    "created_at": Project.created_at,
    "createdAt": Project.created_at,
}
UNKNOWN_FILTER = "Filters Invalid filter does not exist."
BAD_OPERATOR = "Filters {name}: Operator is not set to one of the allowed values."


def _json(raw: str, parameter: str) -> Any:
    # The same parser and refusals as a JSON body (nesting, NUL and surrogates are 400),
    # answered as the InvalidQuery OpenProject sends for a bad query.
    try:
        return jsonbody.loads(raw, ("query", parameter))
    except RequestValidationError as exc:
        raise invalid_query(describe_validation(exc).detail) from None


def _order(raw: str | None, columns: dict[str, InstrumentedAttribute[Any]]) -> list[Any]:
    """Given sortBy (`[["created_at","desc"]]`), return ORDER BY terms ending in a tie-break."""
    criteria = _json(raw, "sortBy") if raw else [["id", "asc"]]
    if not isinstance(criteria, list):
        raise invalid_query("Sort by must be a JSON array of [property, direction] pairs.")
    terms: list[Any] = []
    for criterion in criteria:
        if (
            not isinstance(criterion, list)
            or len(criterion) != 2
            or not all(isinstance(part, str) for part in criterion)
        ):
            raise invalid_query("Sort by must be a JSON array of [property, direction] pairs.")
        name, direction = criterion
        column = columns.get(name)
        if column is None:
            raise invalid_query(f"Sort by {name} is not a supported sort criterion.")
        if direction.lower() not in ("asc", "desc"):
            raise invalid_query(f"Sort by direction {direction} is not asc or desc.")
        terms.append(column.desc() if direction.lower() == "desc" else column.asc())
    id_column = columns["id"]
    return [*terms, id_column.asc()]


def _integers(name: str, values: list[str]) -> list[int]:
    if not values or not all(v.strip().isascii() and v.strip().isdigit() for v in values):
        raise invalid_query(f"Filters {name}: Values is not an integer.")
    # Past 20 digits, past any id (and int() of 4,301 digits or more raises).
    integers = [int(v) if len(v.strip()) <= 20 else MAX_ID + 1 for v in values]
    if max(integers) > MAX_ID:
        raise invalid_query(f"Filters {name}: Values are larger than any id ({MAX_ID}).")
    return integers


def _project_ids(name: str, values: list[str]) -> list[int]:
    """As OpenProject's newest project filter: each value is a project's id or its identifier
    (`project-3`, as the projects show it); an identifier no project has matches none."""
    if not values or not all(v.strip() for v in values):
        raise invalid_query(f"Filters {name}: Values can't be blank.")
    ids = [v.strip().removeprefix(PROJECT_IDENTIFIER_PREFIX) for v in values]
    numeric = [i for i in ids if i.isascii() and i.isdigit()]
    return _integers(name, numeric) if numeric else []


def _id_filter(
    column: InstrumentedAttribute[int],
    label: str,
    parse: Callable[[str, list[str]], list[int]] = _integers,
) -> Filter:
    def build(operator: str, values: list[str]) -> Clause:
        if operator == "*":
            return true()  # the column is never null
        if operator == "!*":
            return false()
        if operator not in ("=", "!"):
            raise invalid_query(BAD_OPERATOR.format(name=label))
        ids = parse(label, values)
        return column.in_(ids) if operator == "=" else not_(column.in_(ids))

    return build


def _active_filter(operator: str, values: list[str]) -> Clause:
    # Every casefolio project is active (there is no archive).
    if operator != "=" or len(values) != 1 or values[0] not in ("t", "f", "true", "false"):
        raise invalid_query(BAD_OPERATOR.format(name="Active"))
    return true() if values[0] in ("t", "true") else false()


def _title_filter(operator: str, values: list[str]) -> Clause:
    if not values:
        raise invalid_query("Filters Title: Values can't be blank.")
    title = lowered(Document.title)
    # Both sides lowered by the database (db/types.py): Python lowers some letters otherwise.
    wanted = [lowered_text(v) for v in values]
    if operator == "=":
        return title.in_(wanted)
    if operator == "!":
        return not_(title.in_(wanted))
    if operator in ("~", "**"):
        return _title_contains(values[0])
    if operator == "!~":
        return not_(_title_contains(values[0]))
    raise invalid_query(BAD_OPERATOR.format(name="Title"))


#: LIKE's escape character for a title filter's value (its own % and _ match themselves).
_LIKE_ESCAPE = "/"


def _title_contains(part: str) -> Clause:
    for special in (_LIKE_ESCAPE, "%", "_"):
        part = part.replace(special, _LIKE_ESCAPE + special)
    return lowered(Document.title).contains(lowered_text(part), escape=_LIKE_ESCAPE)


def _text_filters(postgres: bool) -> dict[str, Filter]:
    """OpenProject's full-text filters, over what casefolio extracts from a document's current
    version (docs/api-v3.md): `search` (`**`, the title or the text) as on work packages, and
    `attachment_content` (`~`, `!~`). One value, in the search language of /api/v1/search."""

    def matching(label: str, values: list[str]) -> Clause:
        if len(values) != 1 or not values[0].strip():
            raise invalid_query(f"Filters {label}: Values must be one text to search for.")
        try:
            return search.current_text_matches(values[0], postgres=postgres)
        except Invalid as exc:
            raise invalid_query(f"Filters {label}: {exc}") from None

    def search_filter(operator: str, values: list[str]) -> Clause:
        if operator != "**":
            raise invalid_query(BAD_OPERATOR.format(name="Search"))
        content = matching("Search", values)
        return or_(_title_contains(values[0]), content)

    def content_filter(operator: str, values: list[str]) -> Clause:
        if operator not in ("~", "!~"):
            raise invalid_query(BAD_OPERATOR.format(name="Attachment content"))
        found = matching("Attachment content", values)
        return found if operator == "~" else not_(found)

    return {"search": search_filter, "attachment_content": content_filter}


_project_id = _id_filter(Document.project_id, "Project", _project_ids)
_DOCUMENT_FILTERS: dict[str, Filter] = {
    "project": _project_id,
    "project_id": _project_id,
    "projectId": _project_id,
    "title": _title_filter,
}
_PROJECT_FILTERS: dict[str, Filter] = {"id": _id_filter(Project.id, "ID"), "active": _active_filter}


@functools.cache
def _document_filters(postgres: bool) -> dict[str, Filter]:
    return _DOCUMENT_FILTERS | _text_filters(postgres)


def _filters(raw: str | None, known: dict[str, Filter]) -> list[Clause]:
    """Given `filters` (`[{"project_id": {"operator": "=", "values": ["1"]}}]`), return the
    WHERE clauses, all to be combined with AND."""
    if not raw:
        return []
    parsed = _json(raw, "filters")
    if not isinstance(parsed, list):
        raise invalid_query("Filters must be a JSON array of filter objects.")
    clauses: list[Clause] = []
    for entry in parsed:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise invalid_query("Filters must be a JSON array of filter objects.")
        [(name, spec)] = entry.items()
        build = known.get(name)
        if build is None:
            raise invalid_query(UNKNOWN_FILTER)
        operator = spec.get("operator") if isinstance(spec, dict) else None
        values = spec.get("values", []) if isinstance(spec, dict) else None
        if not isinstance(operator, str):
            raise invalid_query(BAD_OPERATOR.format(name=name))
        if not isinstance(values, list) or not all(isinstance(v, str | int) for v in values):
            raise invalid_query(f"Filters {name}: Values must be a list of strings.")
        clauses.append(build(operator, [str(v) for v in values]))
    return clauses


def document_query(
    who: Principal, *, filters: str | None, sort_by: str | None, postgres: bool
) -> Select[Any]:
    """The documents the caller may read, filtered and ordered as the query asks."""
    stmt = documents.visible_documents(who).where(*_filters(filters, _document_filters(postgres)))
    return stmt.order_by(*_order(sort_by, _DOCUMENT_SORTS))


def project_query(who: Principal, *, filters: str | None, sort_by: str | None) -> Select[Any]:
    """The projects the caller may see, filtered and ordered as the query asks."""
    stmt = projects.visible_projects(who).where(*_filters(filters, _PROJECT_FILTERS))
    return stmt.order_by(*_order(sort_by, _PROJECT_SORTS))
