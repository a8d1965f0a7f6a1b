"""Documents, versions and fields as reads hand them to the dialects: ORM entities, or the
plain rows below, which the hottest read (`documents.get`) builds straight from a
statement's columns. Building ORM entities there instead cost each GET ~140 µs of
SQLAlchemy attribute events, for objects a read never changes.

The rows' fields are their tables' columns in table order (tests/domain/test_rows.py checks),
so a slice of a result row makes one with `_make`; dialects read either kind by attribute.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, TypeAlias

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
