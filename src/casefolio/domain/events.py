"""What a write changed, as the domain reports it: every filing operation returns these, so
the audit trail, the change feed and webhooks hook in at one place (wave 2, DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True)
class DocumentCreated:
    """A new document, filed with its first version."""

    project_id: int
    document_id: int
    version_id: int
    user_id: int


@dataclass(frozen=True)
class VersionAdded:
    """A new current version of a document (an upload, an import or a claimed upload)."""

    project_id: int
    document_id: int
    version_id: int
    number: int
    user_id: int


@dataclass(frozen=True)
class UploadStored:
    """An upload that no document holds yet (OpenProject's containerless attachment)."""

    version_id: int
    user_id: int


Event: TypeAlias = DocumentCreated | VersionAdded | UploadStored
