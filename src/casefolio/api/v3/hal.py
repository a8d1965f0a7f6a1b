"""HAL plumbing shared by every v3 representer: the media type, links, paths and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.responses import JSONResponse

from casefolio.api.errors import HAL_JSON

Json = dict[str, Any]
API = "/api/v3"


class HalResponse(JSONResponse):
    """JSON sent as `application/hal+json; charset=utf-8`: some OpenProject clients ignore
    any JSON that does not say so."""

    media_type = HAL_JSON


def link(href: str | None, title: str | None = None, **extra: Any) -> Json:
    """Given an href (root-relative, or None for a null link), return a HAL link object."""
    out: Json = {"href": href}
    if title is not None:
        out["title"] = title
    out.update(extra)
    return out


def timestamp(value: datetime) -> str:
    """Given an aware datetime, return it as OpenProject does: ISO 8601 UTC, seconds, `Z`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def root() -> str:
    return API


def user(user_id: int | str) -> str:
    return f"{API}/users/{user_id}"


def project(project_id: int) -> str:
    return f"{API}/projects/{project_id}"


def projects() -> str:
    return f"{API}/projects"


def documents() -> str:
    return f"{API}/documents"


def document(document_id: int) -> str:
    return f"{API}/documents/{document_id}"


def document_attachments(document_id: int) -> str:
    return f"{API}/documents/{document_id}/attachments"


def attachment(attachment_id: int) -> str:
    return f"{API}/attachments/{attachment_id}"


def attachment_content(attachment_id: int) -> str:
    return f"{API}/attachments/{attachment_id}/content"
