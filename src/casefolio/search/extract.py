"""Text out of a stored file: plain text and other text/* (charset detected), PDF (pypdf),
DOCX (python-docx) and e-mail (.eml, the standard library's email package).

Pure functions of the bytes, run in a worker thread (search/index.py). The time limit is
checked between pages, paragraphs and parts (`Deadline`), and the caller stops waiting at
the limit too; the size limit is checked before a file is read at all.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

import charset_normalizer

#: Marks a highlighted word in a snippet (search/service.py); never part of stored text.
MARK_START, MARK_END = "\ue000", "\ue001"
_UNSTORABLE = re.compile("[\x00\ue000\ue001\ud800-\udfff]")
_TAG = re.compile(r"<[^>]*>")

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_TEXT_SUFFIXES = {".txt", ".text", ".md", ".csv", ".tsv", ".log", ".json", ".xml", ".rtf"}


class ExtractionFailed(Exception):
    """The file's text cannot be read; the message says why, for a person."""


class Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self.until = clock() + seconds

    def check(self) -> None:
        if self.clock() > self.until:
            raise ExtractionFailed(f"Reading the text took longer than {self.seconds:g} s.")


def kind_of(file_name: str, content_type: str, head: bytes) -> str | None:
    """Which reader a file needs ("text", "pdf", "docx", "eml"), or None for none."""
    suffix = PurePosixPath(file_name.lower()).suffix
    media = content_type.split(";")[0].strip().lower()
    if media == "application/pdf" or suffix == ".pdf" or head.startswith(b"%PDF-"):
        return "pdf"
    if media == DOCX or suffix == ".docx":
        return "docx"
    if media == "message/rfc822" or suffix == ".eml":
        return "eml"
    if media.startswith("text/") or suffix in _TEXT_SUFFIXES:
        return "text"
    return None


def extract(
    data: bytes, *, file_name: str, content_type: str, deadline: Deadline, max_chars: int
) -> str:
    """The file's text, cleaned (no NUL, nothing a database cannot store) and cut at
    `max_chars`; ExtractionFailed with the reason if it cannot be read."""
    kind = kind_of(file_name, content_type, data[:8])
    if kind is None:
        raise ExtractionFailed(f"casefolio does not read text from {content_type} files.")
    reader = {"text": _text, "pdf": _pdf, "docx": _docx, "eml": _eml}[kind]
    try:
        parts: list[str] = []
        size = 0
        for part in reader(data, deadline):
            parts.append(part)
            size += len(part) + 1
            if size >= max_chars:
                break
            deadline.check()
    except ExtractionFailed:
        raise
    except Exception as exc:  # a malformed file: any of the readers' errors
        raise ExtractionFailed(f"The {kind} file cannot be read: {_brief(exc)}") from exc
    return _UNSTORABLE.sub(" ", "\n".join(parts))[:max_chars]


def _brief(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__)[:200]


def decode(data: bytes) -> str:
    """Bytes of unknown encoding as text: UTF-8 if they are, else what charset detection
    finds; binary data is refused."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise ExtractionFailed("The file is not text in any encoding casefolio recognises.")
    return str(best)


def _text(data: bytes, deadline: Deadline) -> Iterator[str]:
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExtractionFailed("The file is binary, not text.")
    yield decode(data)


def _pdf(data: bytes, deadline: Deadline) -> Iterator[str]:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise ExtractionFailed("The PDF is encrypted with a password.")
    for page in reader.pages:
        deadline.check()
        yield page.extract_text() or ""


def _docx(data: bytes, deadline: Deadline) -> Iterator[str]:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExtractionFailed(f"The DOCX file cannot be read: {_brief(exc)}") from exc
    for paragraph in document.paragraphs:
        yield paragraph.text
    for table in document.tables:
        deadline.check()
        for row in table.rows:
            yield "\t".join(cell.text for cell in row.cells)


def _eml(data: bytes, deadline: Deadline) -> Iterator[str]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    for header in ("From", "To", "Cc", "Subject", "Date"):
        value = message.get(header)
        if value:
            yield f"{header}: {value}"
    for part in message.walk():
        deadline.check()
        if part.is_multipart():
            continue
        name = part.get_filename()
        if name:
            yield f"Attachment: {name}"
            continue
        media = part.get_content_type()
        if media in ("text/plain", "text/html"):
            content = part.get_content()
            if isinstance(content, bytes):
                content = decode(content)
            yield _TAG.sub(" ", content) if media == "text/html" else content
