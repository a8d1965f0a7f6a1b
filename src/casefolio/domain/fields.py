"""Metadata fields: typed per-project properties, and their values on documents."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import Document, Field, FieldValue, Project
from casefolio.domain import access, events, text
from casefolio.domain.access import ProjectScope
from casefolio.domain.errors import Conflict, Invalid, NotFound
from casefolio.domain.pages import Page, PageRequest, fetch_id_page
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.domain.rows import FieldData, FieldRow, labelled, row_of

FIELD_TYPES = ("text", "number", "date", "boolean", "choice")
MAX_TEXT = 10_000
#: The integers every JSON reader holds exactly (JavaScript's included), and search compares
#: a number field's values as doubles: a larger one would be stored as one number and read
#: or found as another.
MAX_EXACT_INTEGER = 2**53 - 1


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    choices: list[str] = field(default_factory=list)
    required: bool = False


def check_spec(spec: FieldSpec) -> FieldSpec:
    """Given a field definition, return it tidied or raise Invalid saying what is wrong."""
    name = text.required_name(spec.name, of="field")
    if spec.type not in FIELD_TYPES:
        raise Invalid(
            f"Unknown field type '{spec.type}'. Use one of: {', '.join(FIELD_TYPES)}.",
            [{"field": "type", "message": "unknown type"}],
        )
    if spec.type == "choice" and (not spec.choices or any(not c.strip() for c in spec.choices)):
        raise Invalid(
            "A choice field needs a list of non-empty choices.",
            [{"field": "choices", "message": "missing or empty"}],
        )
    if spec.type != "choice" and spec.choices:
        raise Invalid(
            "Only choice fields take choices.", [{"field": "choices", "message": "unexpected"}]
        )
    # A choice is shown in lists and picked from menus: one line, as a name is.
    choices = [
        text.stripped_name(c, limit=text.MAX_CHOICE, what=f"Choice {n}", field="choices")
        for n, c in enumerate(spec.choices, 1)
    ]
    # Distinct as a value finds them (`choice_for`): "é" decomposed and composed, or with a
    # zero-width space at its end, are one choice.
    seen: dict[str, int] = {}
    for n, choice in enumerate(choices, 1):
        earlier = seen.setdefault(text.as_stored(choice), n)
        if earlier != n:
            raise Invalid(
                f"Choices must be distinct: choice {n} reads as choice {earlier}, "
                f"{choice!r} (invisible characters, spaces around a choice and Unicode's "
                "composed and decomposed letters do not tell choices apart).",
                [{"field": "choices", "message": "duplicates"}],
            )
    return FieldSpec(name, spec.type, choices, spec.required)


async def create(session: AsyncSession, *, scope: ProjectScope, spec: FieldSpec) -> Field:
    project_id = scope.require(Capability.SETTINGS_MANAGE).project_id
    spec = check_spec(spec)
    taken = await session.scalar(
        select(Field.id).where(Field.project_id == project_id, Field.name == spec.name)
    )
    if taken is not None:
        raise Conflict(
            f"Project {project_id} already has a field named '{spec.name}' (id {taken})."
        )
    row = Field(
        project_id=project_id,
        name=spec.name,
        type=spec.type,
        choices=spec.choices,
        required=spec.required,
    )
    session.add(row)
    await session.flush()
    events.emit(
        session,
        events.FieldCreated(project_id=project_id, subject_id=row.id, details={"name": spec.name}),
    )
    return row


# Built once: every upload runs it, and building it cost more than running it.
_OF_PROJECT = select(Field).where(Field.project_id == bindparam("project_id")).order_by(Field.id)


async def list_all(session: AsyncSession, *, scope: ProjectScope) -> list[Field]:
    return list(await session.scalars(_OF_PROJECT, {"project_id": scope.project_id}))


_PROJECTS, _FIELDS = (cast(Table, model.__table__) for model in (Project, Field))
#: The project (no row: no such project), the caller's rank there and each of its fields
#: (none: one row of NULLs), in field order; parameters `project_id` and `user_id`.
_SCOPE_AND_FIELDS = (
    select(
        _PROJECTS.c.id,
        access.role_rank_column(_PROJECTS.c.id).label("rank"),
        *labelled(_FIELDS, "field_"),
    )
    .select_from(_PROJECTS.outerjoin(_FIELDS, _FIELDS.c.project_id == _PROJECTS.c.id))
    .where(_PROJECTS.c.id == bindparam("project_id"))
    .order_by(_FIELDS.c.id)
)


async def scope_and_fields(
    session: AsyncSession, who: Principal, project_id: int, capability: Capability
) -> tuple[ProjectScope, list[FieldRow]]:
    """`access.scope()` and `list_all()` in one statement, for writes that need both (an
    upload: on PostgreSQL a round trip less). Refuses as `access.scope()` does."""
    parameters = {"project_id": project_id, "user_id": who.user_id}
    # On the connection: a Core statement needs none of the ORM session's execution (on
    # SQLite this is the first statement under the write lock).
    conn = await session.connection()
    rows = (await conn.execute(_SCOPE_AND_FIELDS, parameters)).all()
    if not rows:
        raise NotFound(f"Project {project_id} not found.")
    scope = access.scope_ranked(who, project_id, rows[0][1], capability)
    return scope, [
        row_of(FieldRow, row._mapping, "field_") for row in rows if row.field_id is not None
    ]


async def list_page(
    session: AsyncSession, *, scope: ProjectScope, page: PageRequest
) -> Page[Field]:
    stmt = select(Field).where(Field.project_id == scope.project_id)
    return await fetch_id_page(session, stmt, id_column=Field.id, page=page)


async def get(session: AsyncSession, *, scope: ProjectScope, field_id: int) -> Field:
    return await scope.get(session, Field, field_id)


def choice_for(row: FieldData, value: str) -> str | None:
    """The choice of a choice field that `value` names: the choice itself, or one that is the
    same name once trimmed and composed (text.as_stored: a Mac's decomposed `é` names the
    composed one); None if it names none."""
    if value in row.choices:
        return value
    wanted = text.as_stored(value)
    return next((c for c in row.choices if text.as_stored(c) == wanted), None)


def coerce(row: FieldData, value: Any) -> Any:
    """Given a field and a value from a client, return the value to store or raise Invalid."""
    if row.type == "choice" and isinstance(value, str):
        value = choice_for(row, value) or value  # stored as the choice is spelled
    elif row.type == "text" and isinstance(value, str):
        # Composed (NFC), so that a Mac's decomposed `é` and the composed one are one value
        # to a search by field value (search/service.py).
        value = unicodedata.normalize("NFC", value)
    problem = _problem(row, value)
    if problem:
        raise Invalid(
            f"Invalid value for field '{row.name}' ({row.type}): {problem}.",
            [{"field": row.name, "message": problem}],
        )
    return value


def _problem(row: FieldData, value: Any) -> str | None:
    if value is None:
        return "a value is required" if row.required else None
    match row.type:
        case "text":
            if not isinstance(value, str):
                return "expected a string"
            if len(value) > MAX_TEXT:
                return f"longer than {MAX_TEXT} characters"
        case "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return "expected a number"
            if isinstance(value, float) and not math.isfinite(value):
                return "expected a finite number (NaN and Infinity are not JSON numbers)"
            if isinstance(value, int) and abs(value) > MAX_EXACT_INTEGER:
                return f"expected an integer between -{MAX_EXACT_INTEGER} and {MAX_EXACT_INTEGER}"
        case "boolean":
            if not isinstance(value, bool):
                return "expected true or false"
        case "date":
            if not isinstance(value, str):
                return "expected a date as YYYY-MM-DD"
            try:
                parsed = date.fromisoformat(value)
            except ValueError:
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                    return f"{value} is not a day of the calendar"
                return "expected a date as YYYY-MM-DD"
            # fromisoformat also takes other ISO 8601 forms ("20260105", "2026-W02-1").
            if parsed.isoformat() != value:
                return "expected a date as YYYY-MM-DD"
        case "choice":
            if value not in row.choices:
                return f"expected one of: {', '.join(row.choices)}"
    return None


async def resolve_values(
    session: AsyncSession, *, scope: ProjectScope, values: dict[str, Any], for_new_document: bool
) -> dict[int, Any]:
    """Given values keyed by field id or name, return them keyed by id, validated.

    For a new document every required field must be present.
    """
    rows = await list_all(session, scope=scope)
    return resolve_among(
        rows, project_id=scope.project_id, values=values, for_new_document=for_new_document
    )


def resolve_among(
    rows: Sequence[FieldData], *, project_id: int, values: dict[str, Any], for_new_document: bool
) -> dict[int, Any]:
    """`resolve_values` for a project's fields already loaded (all of them, by id)."""
    by_id = {str(r.id): r for r in rows}
    by_name = {r.name: r for r in rows}
    resolved: dict[int, Any] = {}
    sent_as: dict[int, str] = {}
    for key, value in values.items():
        # A name as field names are stored (text.as_stored): the one it was made with finds it.
        named, numbered = by_name.get(text.as_stored(str(key))), by_id.get(str(key))
        if named is not None and numbered is not None and named is not numbered:
            # A field named "12" beside field 12: taking either would be a guess.
            raise Invalid(
                f"'{key}' is the id of field '{numbered.name}' and the name of field "
                f"{named.id}; send the id of the field you mean.",
                [{"field": f"fields.{key}", "message": "ambiguous: an id and a name"}],
            )
        row = named or numbered
        if row is None:
            raise Invalid(
                f"Project {project_id} has no field '{key}'.",
                [{"field": f"fields.{key}", "message": "unknown field"}],
            )
        if row.id in sent_as:
            # By id and by name, or by two spellings of its name: one value would be lost.
            raise Invalid(
                f"Field '{row.name}' is given twice, as '{sent_as[row.id]}' and as '{key}'; "
                "give it once.",
                [{"field": f"fields.{key}", "message": "given twice"}],
            )
        sent_as[row.id] = str(key)
        resolved[row.id] = coerce(row, value)
    if for_new_document:
        missing = [r.name for r in rows if r.required and resolved.get(r.id) is None]
        if missing:
            raise Invalid(
                f"Required field(s) missing: {', '.join(missing)}.",
                [{"field": f"fields.{name}", "message": "required"} for name in missing],
            )
    return resolved


async def store_values(
    session: AsyncSession, *, document: Document, values: dict[int, Any]
) -> list[int]:
    """Write values (None clears one) for a document; return the ids of the fields whose
    value changed (the caller bumps updated_at if there are any)."""
    changed: list[int] = []
    for field_id, value in values.items():
        existing = await session.get(FieldValue, (document.id, field_id))
        if value is None:
            if existing is not None:
                await session.delete(existing)
                changed.append(field_id)
        elif existing is None:
            session.add(FieldValue(document_id=document.id, field_id=field_id, value=value))
            changed.append(field_id)
        elif existing.value != value:
            existing.value = value
            changed.append(field_id)
    await session.flush()
    return changed
