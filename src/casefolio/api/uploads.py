"""Receiving an upload: multipart (`file` + optional `metadata`) or a raw body, streamed to the
blob store's staging folder while it is hashed; never held whole in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from fastapi import Request

from casefolio.api.state import AppState
from casefolio.domain.errors import TooLarge
from casefolio.storage.base import SpooledFile
from casefolio.storage.multipart import spool_multipart
from casefolio.storage.spool import spool_stream

# Multipart framing and the metadata part ride on top of the file's own bytes.
MULTIPART_ALLOWANCE = 2 * 1024 * 1024


@dataclass(frozen=True)
class ReceivedUpload:
    spooled: SpooledFile
    part_file_name: str | None
    part_content_type: str | None
    metadata: bytes | None
    is_multipart: bool


@asynccontextmanager
async def receive(request: Request, state: AppState) -> AsyncIterator[ReceivedUpload]:
    """Spool the request body; the spooled file is removed afterwards unless it was stored."""
    limit = state.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    content_type = request.headers.get("content-type", "")
    is_multipart = content_type.lower().startswith("multipart/")
    allowance = MULTIPART_ALLOWANCE if is_multipart else 0
    if declared.isdigit() and (len(declared) > 20 or int(declared) > limit + allowance):
        # Refuse before reading a byte: the client learns at once, nothing touches the disk.
        raise TooLarge(f"The upload is larger than the maximum of {limit} bytes.")
    staging = state.blobs.staging_dir
    if is_multipart:
        parts = await spool_multipart(
            request.stream(), content_type=content_type, staging_dir=staging, max_bytes=limit
        )
        upload = ReceivedUpload(
            parts.file, parts.file_name, parts.file_content_type, parts.metadata, True
        )
    else:
        spooled = await spool_stream(request.stream(), staging_dir=staging, max_bytes=limit)
        upload = ReceivedUpload(spooled, None, content_type or None, None, False)
    try:
        yield upload
    finally:
        # BlobStore.put consumes the file; after a refusal it is still here and must go
        # (a held upload has none). Checked inline: this runs while the request may hold
        # SQLite's write lock, and a thread hop there lets every other request's work run
        # before the commit.
        if upload.spooled.held is None and upload.spooled.path.exists():
            await anyio.to_thread.run_sync(lambda: upload.spooled.path.unlink(missing_ok=True))


def multipart_request_body(
    metadata: dict[str, object], *, metadata_required: bool, raw_body: bool
) -> dict[str, object]:
    """The OpenAPI `requestBody` of an upload: a multipart body whose `file` part is required
    and whose `metadata` part is JSON (`metadata`: its schema); with `raw_body`, the bytes may
    also be the whole body, of any content type. Other parts are read and ignored, at most 10
    parts in all: not a JSON Schema bound, as an array property is sent as one part per item
    (docs/api.md says so)."""
    parts = {
        "type": "object",
        "properties": {"file": {"type": "string", "format": "binary"}, "metadata": metadata},
        "required": ["file", "metadata"] if metadata_required else ["file"],
    }
    content: dict[str, object] = {
        "multipart/form-data": {
            "schema": parts,
            "encoding": {"metadata": {"contentType": "application/json"}},
        }
    }
    if raw_body:
        content["*/*"] = {"schema": {"type": "string", "format": "binary"}}
    # An empty raw body is an empty file, so only a multipart-only upload requires a body.
    return {"requestBody": {"required": not raw_body, "content": content}}
