"""Documents, versions and fields as reads hand them to the dialects.

The protocols say what a dialect may read of each; ORM entities satisfy them, and so do the
plain rows below, which the hottest read (`documents.get`) builds straight from a
statement's columns. Building ORM entities there instead cost each GET ~140 µs of
SQLAlchemy attribute events, for objects a read never changes.

The rows' fields are their tables' columns in table order (tests/domain/test_rows.py checks),
so a slice of a result row makes one with `_make`.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, Protocol


class DocumentData(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def project_id(self) -> int: ...
    @property
    def folder_id(self) -> int | None: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def current_version_id(self) -> int | None: ...
    @property
    def current_sha256(self) -> str | None: ...
    @property
    def last_version_number(self) -> int: ...
    @property
    def created_by(self) -> int | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class VersionData(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def document_id(self) -> int: ...
    @property
    def number(self) -> int: ...
    @property
    def file_name(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def created_by(self) -> int | None: ...
    @property
    def created_at(self) -> datetime: ...


class FieldData(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def project_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def choices(self) -> list[str]: ...
    @property
    def required(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...


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
