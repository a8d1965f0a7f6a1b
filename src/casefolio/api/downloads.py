"""One responder for every download: ETag, If-None-Match, Range, Content-Disposition, HEAD."""

from __future__ import annotations

import asyncio
import os
import re
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
from fastapi import Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.datastructures import MutableHeaders
from starlette.types import Receive, Scope, Send

from casefolio.api.errors import DialectProblem, Problem
from casefolio.api.middleware import HEAD_FLAG
from casefolio.db.models import DocumentVersion
from casefolio.outbound import audit
from casefolio.storage.base import BlobMissing, BlobStore

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(Exception): ...


_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
#: What a download answers, for the OpenAPI document: the bytes come with the content type
#: they were uploaded with, whatever it is.
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The bytes, with the Content-Type they were stored with.",
        "content": _BYTES,
    },
    206: {
        "description": "The requested byte range (`Range`), with Content-Range.",
        "content": _BYTES,
    },
    304: {
        "description": "Not modified: If-None-Match named the current ETag (the SHA-256), "
        "or, without If-None-Match, If-Modified-Since is not before Last-Modified."
    },
    416: {"description": "Range Not Satisfiable: the range starts past the end."},
}


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Given a Range header and the blob size, return one half-open byte range, or None to
    send the whole body: RFC 9110 lets a server ignore a Range it does not support
    (several ranges) and tells it to ignore an invalid one (`bytes=5-2`, `items=0-1`).
    Raise RangeNotSatisfiable for a valid range that lies past the end."""
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = _position(last)
        if length == 0 or size == 0:  # no bytes to give: "bytes 0--1/0" is no range
            raise RangeNotSatisfiable
        return max(0, size - length), size
    start = _position(first)
    if last and _position(last) < start:
        return None  # invalid: last-pos before first-pos
    if start >= size:
        raise RangeNotSatisfiable
    end = min(_position(last) + 1, size) if last else size
    return start, end


def _position(digits: str) -> int:
    # Past 20 digits a position lies beyond any file; int() of 4,301 digits or more raises.
    return int(digits) if len(digits) <= 20 else 10**20


def content_disposition(file_name: str) -> str:
    """Given a file name, return an attachment disposition that survives any name: the name
    itself in `filename*` (RFC 5987), after an ASCII stand-in in `filename` for clients that
    read only that one (curl -OJ), as RFC 6266 section 4.3 advises."""
    quoted = quote(file_name, safe="")
    if quoted == file_name:
        return f'attachment; filename="{file_name}"'
    return f"attachment; filename=\"{_ascii_stand_in(file_name)}\"; filename*=UTF-8''{quoted}"


def _ascii_stand_in(file_name: str) -> str:
    """Given a file name, return it in printable ASCII: accents dropped (é → e), any other
    character that is not, and the quoted string's own `"` and `\\`, as `_`."""
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", file_name) if not unicodedata.combining(c)
    )
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in plain)


def _not_modified_since(header: str | None, last_modified: datetime) -> bool:
    """Whether If-Modified-Since says the client's copy is current: RFC 9110 13.1.3, a date
    that does not parse is ignored."""
    if not header:
        return False
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        return False  # not an HTTP-date (those are GMT)
    return last_modified.replace(microsecond=0) <= since


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates


#: Bytes per read of a local blob, for servers without zero-copy file sending (uvicorn).
FILE_CHUNK_BYTES = 2 * 1024 * 1024


#: On every content response: the bytes are the client's, never a page of ours. Without
#: them a browser would render an uploaded HTML file (or sniff one) on our origin.
CONTENT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


class BlobFileResponse(FileResponse):
    """FileResponse for servers without zero-copy file sending (uvicorn): it reads the file
    FILE_CHUNK_BYTES at a time instead of Starlette's 64 KiB, and reads each next chunk in a
    worker thread while the one before is being sent (Starlette reads, then sends, then
    reads). Fewer, larger reads go faster, but each chunk in flight is memory held per
    download: bench/README.md has the measurements behind the size.
    """

    chunk_size = FILE_CHUNK_BYTES

    def __init__(self, *args: Any, byte_range: tuple[int, int] | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._byte_range = byte_range

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # blob_response has decided on the range already, by one rule for every store:
        # FileResponse sees that range alone (or none: the whole body).
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"range", b"if-range")]
        if self._byte_range is not None:
            start, end = self._byte_range
            headers.append((b"range", f"bytes={start}-{end - 1}".encode()))
        await super().__call__({**scope, "headers": headers}, receive, send)

    async def _handle_simple(self, send: Send, send_header_only: bool, send_pathsend: bool) -> None:
        if send_header_only or send_pathsend:
            await super()._handle_simple(send, send_header_only, send_pathsend)
            return
        start = {"type": "http.response.start", "status": self.status_code}
        await send(start | {"headers": self.raw_headers})
        await self._send_bytes(send, 0, None)

    async def _handle_single_range(
        self, send: Send, start: int, end: int, file_size: int, send_header_only: bool
    ) -> None:
        if send_header_only:
            await super()._handle_single_range(send, start, end, file_size, send_header_only)
            return
        headers = MutableHeaders(raw=list(self.raw_headers))
        headers["content-range"] = f"bytes {start}-{end - 1}/{file_size}"
        headers["content-length"] = str(end - start)
        await send({"type": "http.response.start", "status": 206, "headers": headers.raw})
        await self._send_bytes(send, start, end)

    async def _send_bytes(self, send: Send, start: int, end: int | None) -> None:
        """Send the file from `start` to `end` (None: to its end), each next chunk read in a
        worker thread while the one before is sent."""
        descriptor = await anyio.to_thread.run_sync(os.open, self.path, os.O_RDONLY)

        def read(offset: int) -> bytes:
            wanted = self.chunk_size if end is None else min(self.chunk_size, end - offset)
            return os.pread(descriptor, wanted, offset) if wanted > 0 else b""

        loop = asyncio.get_running_loop()
        reading = loop.run_in_executor(None, read, start)
        try:
            while True:
                chunk = await reading
                start += len(chunk)
                more = len(chunk) == self.chunk_size and (end is None or start < end)
                if more:
                    reading = loop.run_in_executor(None, read, start)
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    return
        finally:
            # A read still running must end before its descriptor is closed (and reused).
            with anyio.CancelScope(shield=True):
                await asyncio.wait([reading])
            os.close(descriptor)


async def blob_response(
    request: Request,
    blobs: BlobStore,
    version: DocumentVersion,
    *,
    whole_version: bool = False,
    current: bool = False,
    cache_control: str = "private, no-cache",
) -> Response:
    """Given a version, return a response that streams its bytes (or the headers for HEAD).

    A response with bytes is audited (content.downloaded, or version.downloaded when the
    caller asked for that version by its id: `whole_version`). By default a client may keep
    the bytes and ask again with their ETag. `current`: the URL names a document's current
    version, whose bytes change, so only the ETag tells whether a kept copy is still right
    (the time, to the second, may not: a replacement in the same second, an older version
    current again after the newer one's deletion)."""
    etag = f'"{version.sha256}"'
    # The version's bytes never change after it is filed: its filing time is when they were
    # last modified (not the blob file's mtime, which a shared or restored blob does not keep,
    # and which a store other than the local disk does not have).
    last_modified = version.created_at.astimezone(UTC)
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(last_modified, usegmt=True),
        "Accept-Ranges": "bytes",
        "Cache-Control": cache_control,
        **CONTENT_HEADERS,
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
    elif not current and _not_modified_since(
        request.headers.get("if-modified-since"), last_modified
    ):
        # RFC 9110 13.1.3: If-Modified-Since counts only without If-None-Match.
        return Response(status_code=304, headers=headers)
    headers["Content-Disposition"] = content_disposition(version.file_name)
    # The type as stored, given as a header: from `media_type` Starlette would add
    # "; charset=utf-8" to a text/* type without a charset, mislabelling text in another one.
    headers["Content-Type"] = version.content_type
    size = version.size
    if request.scope.get(HEAD_FLAG):
        # Answer HEAD from the row alone: no reason to open a 1 GiB file to send nothing.
        headers["Content-Length"] = str(size)
        return Response(headers=headers, media_type=version.content_type)
    wanted: tuple[int, int] | None = None
    if "range" in request.headers and _if_range_ok(request, etag):
        try:
            wanted = parse_range(request.headers["range"], size)
        except RangeNotSatisfiable:
            problem = Problem(
                416,
                "Range Not Satisfiable",
                f"The range {request.headers['range']!r} lies outside the {size} bytes.",
                "InvalidQuery",
                headers={**CONTENT_HEADERS, "Content-Range": f"bytes */{size}"},
            )
            # Raised, not rendered here: each caller's handlers answer it in its dialect, and
            # a page's download with a page (web/deps.py).
            raise DialectProblem(problem) from None
    path = blobs.local_path(version.sha256)
    if path is not None:
        # One stat of a local file, on the loop: less than a thread hop would cost. A missing
        # blob is then an error the client can read, and no download is audited.
        if not path.is_file():
            raise BlobMissing(version.sha256)
        await audit.record_download(
            request.app.state.casefolio.db, version, whole_version=whole_version
        )
        # FileResponse sends the range decided here, zero-copy where the server can.
        return BlobFileResponse(
            path, media_type=version.content_type, headers=headers, byte_range=wanted
        )
    start, end = wanted or (0, size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    body = blobs.read(version.sha256, start, end)
    # The first chunk before the audit and the status line: a store that cannot be read
    # (S3 down) answers 503 and is not audited as a download, rather than a 200 cut short.
    first = await anext(body, b"")
    try:
        await audit.record_download(
            request.app.state.casefolio.db, version, whole_version=whole_version
        )
    except BaseException:
        await body.aclose()
        raise
    return StreamingResponse(
        _prepended(first, body), status, headers=headers, media_type=version.content_type
    )


async def _prepended(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


def _if_range_ok(request: Request, etag: str) -> bool:
    if_range = request.headers.get("if-range")
    return if_range is None or if_range.strip() == etag
