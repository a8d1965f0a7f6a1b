"""Documents, versions and fields as reads hand them to the dialects: ORM entities, or the
plain rows below, which the hottest read (`documents.get`) builds straight from a
statement's named columns: building ORM entities there instead costs each GET SQLAlchemy's
attribute events, for objects a read never changes (bench/README.md).

The rows' fields are their tables' columns (tests/domain/test_rows.py checks); `row_of`
builds one by name from an entity or a result mapping, never by position.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, TypeAlias, TypeVar

from sqlalchemy import ColumnElement, Table

from casefolio.db.models import Document, DocumentVersion, Field


class DocumentRow(NamedTuple):
    id: int
    project_id: int
    folder_id: int | None
    title: str
    description: str
    current_version_id: int | None
    current_sha256: str | None
    last_version_number: int
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    trashed_at: datetime | None = None


class VersionRow(NamedTuple):
    id: int
    document_id: int
    number: int
    file_name: str
    content_type: str
    size: int
    sha256: str
    description: str
    created_by: int | None
    created_at: datetime
    trashed_at: datetime | None = None


class FolderRow(NamedTuple):
    id: int
    project_id: int
    parent_id: int | None
    parent_key: int
    name: str
    created_at: datetime


class FieldRow(NamedTuple):
    id: int
    project_id: int
    name: str
    type: str
    choices: list[str]
    required: bool
    created_at: datetime


DocumentData: TypeAlias = Document | DocumentRow
VersionData: TypeAlias = DocumentVersion | VersionRow
FieldData: TypeAlias = Field | FieldRow


R = TypeVar("R", DocumentRow, VersionRow, FieldRow)


def row_of(kind: type[R], source: object, prefix: str = "") -> R:
    """Given a row type and an ORM entity or a result mapping (its keys `prefix` + column
    name), return the plain row, field by field by name."""
    if isinstance(source, Mapping):
        values: Mapping[str, Any] = source
        return kind(**{name: values[prefix + name] for name in kind._fields})
    return kind(**{name: getattr(source, name) for name in kind._fields})


def labelled(table: Table, prefix: str) -> list[ColumnElement[Any]]:
    """The table's columns, each labelled `prefix` + its name: what `row_of` reads back, so
    that one statement can hold several tables' rows side by side."""
    return [c.label(prefix + c.key) for c in table.columns]
