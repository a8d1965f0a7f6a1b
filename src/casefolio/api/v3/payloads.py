"""Request bodies of the v3 dialect: the document PATCH and an attachment's `metadata` part."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request

from casefolio.api import jsonbody
from casefolio.api.v3 import formattable
from casefolio.api.v3.problems import constraint, invalid_body, type_not_supported
from casefolio.domain import intake, text
from casefolio.domain.errors import Invalid

MAX_TITLE = 60  # OpenProject's constraint on Document#title
MAX_CLAIMED = 100  # attachments one PATCH may link
_ATTACHMENT_PATH = re.compile(r"/api/v3/attachments/([1-9][0-9]{0,17})")
JSON_TYPES = ("application/json", "application/hal+json")
NOT_AN_OBJECT = "The request body was not a single JSON object."


@dataclass(frozen=True)
class DocumentChanges:
    title: str | None
    description: str | None
    attachment_ids: list[int]  # `_links.attachments` to claim, in order


@dataclass(frozen=True)
class AttachmentMetadata:
    file_name: str | None
    description: str
    content_type: str | None


def _formattable(limit: int) -> dict[str, Any]:
    # One schema, not anyOf: maxLength bounds a string, properties an object.
    return {
        "type": ["string", "object", "null"],
        "maxLength": limit,
        "properties": {"raw": {"type": ["string", "null"], "maxLength": limit}},
    }


# The bodies as the OpenAPI document gives them (the checks below are what the server runs).
# A title is 1 to 60 characters once trimmed, on one line (`text.one_line_pattern`).
_TITLE = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_TITLE,
    "pattern": text.one_line_pattern(),
}
DOCUMENT_PATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": _TITLE,
        "description": _formattable(text.MAX_DESCRIPTION),
        "_links": {
            "type": ["object", "null"],
            "properties": {
                "attachments": {
                    "type": ["array", "null"],
                    "maxItems": MAX_CLAIMED,
                    "description": "The caller's own uploads without a container.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "href": {"type": "string", "pattern": f"^{_ATTACHMENT_PATH.pattern}$"}
                        },
                        "required": ["href"],
                    },
                }
            },
        },
    },
}
ATTACHMENT_METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # A blank fileName falls back to the file part's filename.
        "fileName": {"type": ["string", "null"], "maxLength": text.MAX_FILE_NAME_INPUT},
        "description": _formattable(text.MAX_DESCRIPTION),
        "contentType": {"type": ["string", "null"], "maxLength": text.MAX_CONTENT_TYPE},
        "fileSize": {"description": "Ignored, whatever it holds."},
    },
}


def _object(raw: bytes, where: tuple[str, ...] = jsonbody.BODY) -> dict[str, Any]:
    # The parser and refusals of a /api/v1 body (api/jsonbody.py): nesting, NUL, surrogates.
    parsed = jsonbody.loads(raw, where)
    if not isinstance(parsed, dict):
        raise invalid_body(NOT_AN_OBJECT)
    return parsed


async def json_object(request: Request) -> dict[str, Any]:
    """Return the request's JSON object body; 415 for another media type, 400 if unparsable."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media and media not in JSON_TYPES:
        raise type_not_supported("application/json", content_type)
    return _object(await request.body())


def _within_limit(description: str | None) -> str | None:
    """A description's raw text, refused (422) over the limit v1 has too."""
    if description is not None and len(description) > text.MAX_DESCRIPTION:
        raise constraint(
            "description",
            f"Description is too long (maximum is {text.MAX_DESCRIPTION} characters).",
        )
    return description


def document_changes(body: dict[str, Any]) -> DocumentChanges:
    """Given a PATCH body, return the changes; 422 naming `title` or `description` if one
    breaks OpenProject's constraints. Read-only properties are ignored, as OpenProject does."""
    title = body.get("title")
    if "title" in body:
        if not isinstance(title, str) or not title.strip():
            raise constraint("title", "Title can't be blank.")
        if len(title) > MAX_TITLE:  # as sent, as OpenProject counts
            raise constraint("title", f"Title is too long (maximum is {MAX_TITLE} characters).")
        title = title.strip()
    description = None
    if "description" in body:
        # OpenProject passes description straight through (opf/openproject#24769), so
        # clients send either {"raw": …} or a bare string; both are taken.
        description = _within_limit(formattable.raw_text(body["description"]))
        if description is None:
            raise constraint("description", 'Description must be {"raw": "…"} or a string.')
    return DocumentChanges(
        title=title, description=description, attachment_ids=_attachment_links(body)
    )


def _attachment_links(body: dict[str, Any]) -> list[int]:
    """Given a PATCH body, return the attachment ids its `_links.attachments` names, as
    OpenProject clients link uploads they made without a container; 422 on a bad link."""
    links = body.get("_links")
    if links is None:
        return []
    if not isinstance(links, dict):
        raise constraint("_links", "_links must be an object.")
    entries = links.get("attachments")
    if entries is None:
        return []
    if not isinstance(entries, list) or len(entries) > MAX_CLAIMED:
        raise constraint(
            "attachments", f"Attachments must be a list of at most {MAX_CLAIMED} links."
        )
    ids: list[int] = []
    for entry in entries:
        href = entry.get("href") if isinstance(entry, dict) else None
        match = _ATTACHMENT_PATH.fullmatch(_path_of(href)) if isinstance(href, str) else None
        if match is None:
            raise constraint(
                "attachments",
                'Each attachment link must be {"href": "/api/v3/attachments/<id>"}.',
            )
        ids.append(int(match.group(1)))
    return ids


def _path_of(href: str) -> str:
    try:
        return urlsplit(href).path
    except ValueError:  # not a URL: "http://[" (an unclosed IPv6 address)
        return ""


def attachment_metadata(raw: bytes | None, part_file_name: str | None) -> AttachmentMetadata:
    """Given the `metadata` part, return what it says; `fileName` wins over the file part's
    filename, which is only a fallback."""
    if raw is None:
        raise invalid_body("The multipart body has no `metadata` part.")
    meta = _object(raw, ("metadata",))
    name = meta.get("fileName")
    if name is not None and not isinstance(name, str):
        raise constraint("fileName", "File name must be a string.")
    name = (name or "").strip() or (part_file_name or "").strip()
    try:
        # What is left once path segments and control characters are taken out (".." and
        # "\x01" leave nothing) must not be blank either.
        intake.clean_file_name(name)
    except Invalid:
        raise constraint("fileName", "File name can't be blank.") from None
    if len(name) > text.MAX_FILE_NAME_INPUT:
        raise constraint(
            "fileName", f"File name is too long (maximum is {text.MAX_FILE_NAME_INPUT} characters)."
        )
    description = _within_limit(formattable.raw_text(meta.get("description")))
    if description is None:
        raise constraint("description", 'Description must be {"raw": "…"} or a string.')
    content_type = meta.get("contentType")
    if content_type is not None and not isinstance(content_type, str):
        raise constraint("contentType", "Content type must be a string.")
    if content_type is not None and len(content_type) > text.MAX_CONTENT_TYPE:
        raise constraint(
            "contentType",
            f"Content type is too long (maximum is {text.MAX_CONTENT_TYPE} characters).",
        )
    return AttachmentMetadata(name, description, (content_type or "").strip() or None)
