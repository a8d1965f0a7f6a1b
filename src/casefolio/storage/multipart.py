"""Receive a ``multipart/form-data`` upload: its ``file`` part streams into the staging
folder as storage/spool.py streams a raw body (hashed in a worker thread in batches, or held
in memory when small), its ``metadata`` part into memory, any other part parsed and dropped;
the part count, part headers and part sizes are bounded before the parser reads further."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio
import anyio.to_thread
from streaming_form_data import (  # type: ignore[import-untyped]
    ParseFailedException,
    StreamingFormDataParser,
)
from streaming_form_data.targets import BaseTarget  # type: ignore[import-untyped]

from casefolio.domain.errors import Invalid
from casefolio.storage.base import SpooledFile
from casefolio.storage.spool import HOLD_BYTES, TempWriter, batches, discard, too_large

#: Headroom for part headers, boundaries and small form fields around the file.
_MULTIPART_OVERHEAD_BYTES = 1024 * 1024

#: Parts a multipart body may have: `file`, `metadata` and a few a client adds of its own.
MAX_PARTS = 10
#: Bytes of one part's headers.
MAX_PART_HEADER_BYTES = 8 * 1024
#: Bytes of the `metadata` part: room for a description of 100,000 characters, escaped.
METADATA_MAX_BYTES = 1024 * 1024
#: Bytes of any other part but `file` (read and dropped).
OTHER_PART_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class MultipartUpload:
    """A ``multipart/form-data`` upload: the spooled ``file`` part and the ``metadata`` part."""

    file: SpooledFile
    file_name: str | None
    file_content_type: str | None
    metadata: bytes | None


class _FileTarget(BaseTarget):  # type: ignore[misc]  # streaming_form_data is untyped
    """Hashes and writes the ``file`` part straight into the temp file."""

    def __init__(self, writer: TempWriter, max_bytes: int) -> None:
        super().__init__()
        self._writer = writer
        self._max_bytes = max_bytes
        self.started = False
        self.finished = False

    def on_start(self) -> None:
        if self.started:
            raise Invalid("The multipart body has more than one `file` part.")
        self.started = True

    def on_data_received(self, chunk: bytes) -> None:
        if self._writer.size + len(chunk) > self._max_bytes:
            raise too_large(self._max_bytes)
        self._writer.write(chunk)

    def on_finish(self) -> None:
        self.finished = True


class _BoundedValueTarget(BaseTarget):  # type: ignore[misc]  # streaming_form_data is untyped
    """Like ``ValueTarget``, but refuses to hold more than ``max_bytes`` in memory."""

    def __init__(self, name: str, max_bytes: int) -> None:
        super().__init__()
        self._name = name
        self._max_bytes = max_bytes
        self._parts: list[bytes] = []
        self._size = 0
        self.started = False
        self.finished = False

    def on_start(self) -> None:
        if self.started:
            raise Invalid(f"The multipart body has more than one `{self._name}` part.")
        self.started = True

    def on_data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._max_bytes:
            raise Invalid(f"The `{self._name}` part is larger than {self._max_bytes} bytes.")
        self._parts.append(chunk)

    def on_finish(self) -> None:
        self.finished = True

    @property
    def value(self) -> bytes:
        return b"".join(self._parts)


_FILE_PART = re.compile(rb'content-disposition:[^\r\n]*;\s*name="?file"?\s*(;|\r|$)', re.I)
_METADATA_PART = re.compile(rb'content-disposition:[^\r\n]*;\s*name="?metadata"?\s*(;|\r|$)', re.I)
_RAW_FILE_NAME = re.compile(rb'content-disposition:[^\r\n]*;\s*filename="((?:[^"\\]|\\.)*)"', re.I)
#: U+FFFD as UTF-8: what a decoder puts in place of a byte it cannot decode.
_REPLACEMENT = "\ufffd".encode()
_EXTENDED_FILE_NAME = re.compile(rb"content-disposition:[^\r\n]*;\s*filename\*=([^;\r\n]*)", re.I)


class _PartGuard:
    """Counts a multipart body's parts and measures their headers and (but for `file`) their
    bodies on the raw bytes, before the parser sees them: the parser spends CPU on every part
    and every header line (bench/README.md), so a body of empty parts or endless headers,
    read to its end, would hold a worker for seconds. The first part over a limit
    stops the upload (Invalid).

    It also keeps the `file` part's filename as sent: the parser unescapes the quoted
    string, which loses the backslashes of a browser's `C:\\Users\\me\\brief.pdf`.
    """

    def __init__(self, content_type: str) -> None:
        boundary = re.search(r'boundary="?([^";]+)"?', content_type, re.I)
        # An absent boundary is refused by the parser, which is made first.
        self._delimiter = b"\r\n--" + (boundary.group(1).encode() if boundary else b"")
        self._tail = b"\r\n"  # the first delimiter of a body has no line break before it
        self._in_headers = False
        self._header = bytearray()
        self._body_limit: int | None = None  # None: the file part, bounded elsewhere
        self._body = 0
        self._part = ""
        self.parts = 0
        self.raw_file_name: str | None = None
        self.extended_file_name = False  # the file part had a filename* too
        self.sent_replacement = False  # its file name, as sent, holds U+FFFD itself

    def feed(self, data: bytes) -> None:
        buf = self._tail + data
        pos = 0
        while True:
            if self._in_headers:
                end = buf.find(b"\r\n\r\n", pos)
                keep = end if end >= 0 else max(pos, len(buf) - 3)
                self._header += buf[pos:keep]
                if len(self._header) > MAX_PART_HEADER_BYTES:
                    raise Invalid(
                        f"A part of the multipart body has more than {MAX_PART_HEADER_BYTES} "
                        "bytes of headers."
                    )
                if end < 0:
                    self._tail = buf[keep:]
                    return
                self._start_body()
                pos = end + 4
            else:
                found = buf.find(self._delimiter, pos)
                keep = found if found >= 0 else max(pos, len(buf) - len(self._delimiter) + 1)
                self._body += keep - pos
                if self._body_limit is not None and self._body > self._body_limit:
                    raise Invalid(
                        f"The `{self._part}` part is larger than {self._body_limit} bytes."
                    )
                if found < 0:
                    self._tail = buf[keep:]
                    return
                self.parts += 1  # the closing delimiter is counted too: one more than parts
                if self.parts > MAX_PARTS + 1:
                    raise Invalid(f"The multipart body has more than {MAX_PARTS} parts.")
                self._in_headers, self._header = True, bytearray()
                pos = found + len(self._delimiter)

    def _start_body(self) -> None:
        header = bytes(self._header)
        self._in_headers, self._body = False, 0
        if _FILE_PART.search(header):
            self._part, self._body_limit = "file", None
            raw = _RAW_FILE_NAME.search(header)
            if raw is not None and self.raw_file_name is None:
                self.raw_file_name = raw.group(1).decode("utf-8", "replace")
                self.sent_replacement |= _REPLACEMENT in raw.group(1)
            extended = _EXTENDED_FILE_NAME.search(header)
            if extended is not None:
                self.extended_file_name = True
                _check_extended_file_name(extended.group(1))
                self.sent_replacement |= _REPLACEMENT in unquote_to_bytes(extended.group(1))
        elif _METADATA_PART.search(header):
            self._part, self._body_limit = "metadata", METADATA_MAX_BYTES
        else:
            self._part, self._body_limit = "other", OTHER_PART_MAX_BYTES


def _check_extended_file_name(value: bytes) -> None:
    """RFC 5987's `filename*=UTF-8''<percent-encoded>`: its bytes must be UTF-8 once decoded,
    as a plain `filename` must be (the parser would put U+FFFD in place of the rest)."""
    charset, _, encoded = value.strip().partition(b"'")
    _, _, encoded = encoded.partition(b"'")
    if charset.lower() != b"utf-8":
        return  # the parser decodes other charsets; what it cannot, _check_decoded finds
    try:
        unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(
            "The file part's filename* is not UTF-8 once its %-escapes are decoded; send the "
            "file name's UTF-8 bytes, each escaped as %XX."
        ) from None


def _check_decoded(parsed: str | None, guard: _PartGuard) -> None:
    """A filename* in another charset than UTF-8, an unknown one or none (`''%E9.txt`,
    `us-ascii''%E9.txt`, no quotes at all) is decoded by the parser, which puts U+FFFD in
    place of every byte it cannot decode: refused, rather than stored as a name the client
    never sent."""
    if guard.extended_file_name and parsed and "\ufffd" in parsed and not guard.sent_replacement:
        raise Invalid(
            "The file part's filename* holds bytes its charset cannot decode; send the file "
            "name's UTF-8 bytes as filename*=UTF-8''<each byte escaped as %XX>."
        )


def _feed(parser: Any, guard: _PartGuard, batch: list[bytes]) -> None:
    # Parsing (Cython) and the targets' hashing/writing all run here, off the loop.
    data = b"".join(batch)
    guard.feed(data)
    try:
        parser.data_received(data)
    except ParseFailedException as exc:
        raise Invalid("The request body is not valid multipart/form-data.") from exc
    except UnicodeDecodeError as exc:
        # The parser reads each part's headers as UTF-8, the encoding RFC 7578 recommends.
        raise Invalid(
            "The request body is not valid multipart/form-data: a part's headers are not UTF-8"
            " (send a non-ASCII file name as UTF-8, or as filename*=UTF-8''…)."
        ) from exc


def _make_parser(content_type: str) -> Any:
    try:
        return StreamingFormDataParser(headers={"Content-Type": content_type})
    except ParseFailedException as exc:
        raise Invalid(
            "The request must be multipart/form-data with a boundary "
            f"(got Content-Type {content_type!r})."
        ) from exc


async def spool_multipart(
    chunks: AsyncIterable[bytes],
    *,
    content_type: str,
    staging_dir: Path,
    max_bytes: int,
    metadata_max_bytes: int = METADATA_MAX_BYTES,
) -> MultipartUpload:
    """Stream a ``multipart/form-data`` body: the ``file`` part to staging, ``metadata`` to memory.

    Other parts are parsed and dropped. Raises ``Invalid`` for a non-multipart
    content type, a malformed or truncated body, a missing or repeated ``file``
    part, more than MAX_PARTS parts, a part's headers over MAX_PART_HEADER_BYTES, an
    oversized ``metadata`` part or another over OTHER_PART_MAX_BYTES (all found before the
    parser reads that far); ``TooLarge`` when the file exceeds
    ``max_bytes``. No temp file survives a failure. A body of at most HOLD_BYTES is parsed
    on the loop and its file part held in memory (parsing that much costs less than a trip
    to a worker thread).
    """
    parser = _make_parser(content_type)
    guard = _PartGuard(content_type)
    writer = TempWriter(staging_dir, hold=HOLD_BYTES)
    try:
        file_target = _FileTarget(writer, max_bytes)
        metadata_target = _BoundedValueTarget("metadata", metadata_max_bytes)
        parser.register("file", file_target)
        parser.register("metadata", metadata_target)
        # Parts we ignore are still parsed; bound the whole body so they cannot run forever.
        body_limit = max_bytes + metadata_max_bytes + _MULTIPART_OVERHEAD_BYTES
        received = 0
        async for batch in batches(chunks):
            received += sum(map(len, batch))
            if received > body_limit:
                raise too_large(max_bytes)
            if received <= HOLD_BYTES:  # the file part so far is smaller: the writer holds
                _feed(parser, guard, batch)
            else:
                await anyio.to_thread.run_sync(_feed, parser, guard, batch)
        _check_complete(file_target, metadata_target)
        _check_decoded(file_target.multipart_filename, guard)
        if writer.path is None:
            spooled = writer.finish()  # held: nothing to close
        else:
            spooled = await anyio.to_thread.run_sync(writer.finish)
    except BaseException:
        await discard(writer)
        raise
    return MultipartUpload(
        file=spooled,
        file_name=_file_name(
            file_target.multipart_filename, guard.raw_file_name, guard.extended_file_name
        ),
        file_content_type=file_target.multipart_content_type or None,
        metadata=metadata_target.value if metadata_target.started else None,
    )


#: WHATWG HTML's multipart/form-data encoding, which browsers and curl (7.81 on) use, sends
#: these three characters of a file name as escapes, and no others.
_FORM_ESCAPES = re.compile("%22|%0D|%0A")
_FORM_ESCAPED = {"%22": '"', "%0D": "\r", "%0A": "\n"}


def _file_name(parsed: str | None, raw: str | None, extended: bool) -> str | None:
    # A backslash the parser took for an escape was a path separator (browsers never escape
    # one); the domain keeps the last segment of either. But one before a quote escapes it
    # (a quoted-pair, as curl before 7.81 sends `a\"b.txt`): no Windows path holds a quote.
    windows_path = raw is not None and "\\" in raw and '\\"' not in raw
    name = raw if windows_path else parsed or None
    if name is None or extended:
        return name  # a filename* is all %-escapes, already decoded by the parser
    # CR and LF come back as control characters, which the domain drops from every name.
    return _FORM_ESCAPES.sub(lambda m: _FORM_ESCAPED[m.group()], name)


def _check_complete(file_target: _FileTarget, metadata_target: _BoundedValueTarget) -> None:
    # The parser only signals a part's end when it sees the next boundary, so a
    # truncated body shows up here as a part that started but never finished.
    if not file_target.started:
        raise Invalid("The multipart body has no `file` part.")
    if not file_target.finished or (metadata_target.started and not metadata_target.finished):
        raise Invalid("The multipart body ended before its closing boundary.")
