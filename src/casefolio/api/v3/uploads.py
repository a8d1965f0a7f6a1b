"""Receiving a v3 attachment: multipart only, with v1's streaming receiver underneath and
its refusals re-worded as OpenProject words them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request

from casefolio.api.state import AppState
from casefolio.api.uploads import ReceivedUpload, receive
from casefolio.api.v3.problems import constraint, invalid_body, type_not_supported
from casefolio.domain.errors import Invalid, TooLarge

MULTIPART = "multipart/form-data"


def require_multipart(request: Request) -> None:
    """415 TypeNotSupported unless the body is multipart/form-data (checked before reading)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith(MULTIPART):
        raise type_not_supported(MULTIPART, content_type)


@asynccontextmanager
async def receive_attachment(request: Request, state: AppState) -> AsyncIterator[ReceivedUpload]:
    """Spool the upload. A malformed body is 400 InvalidRequestBody and an oversized file 422
    PropertyConstraintViolation, as in OpenProject; errors raised inside the block pass as is."""
    require_multipart(request)
    limit = state.settings.max_upload_bytes
    entered = False
    try:
        async with receive(request, state) as upload:
            entered = True
            yield upload
    except TooLarge:
        if entered:
            raise
        raise constraint(
            "fileSize", f"File is too large (maximum size is {limit} Bytes)."
        ) from None
    except Invalid as exc:
        if entered:
            raise
        raise invalid_body(exc.message) from None
