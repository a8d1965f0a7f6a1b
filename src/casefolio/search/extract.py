"""Text out of a stored file: plain text and other text/* (charset detected), PDF (pypdf),
DOCX (python-docx) and e-mail (.eml, the standard library's email package); with OCR on,
images and image-only PDFs by the tesseract program (pages drawn by poppler's pdftoppm).

Pure functions of the bytes, run in a child process (search/sandbox.py). The time limit is
checked between pages, paragraphs and parts (`Deadline`), and the child is killed soon
after it; the size limit is checked before a file is read at all.
"""

from __future__ import annotations

import email
import email.policy
import functools
import io
import re
import shutil
import subprocess
import tempfile
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import charset_normalizer

from casefolio.search import words

#: Marks a highlighted word in a snippet (search/hits.py); never part of stored text.
MARK_START, MARK_END = "\ue000", "\ue001"
_UNSTORABLE = re.compile(f"[\x00\ue000\ue001\ud800-\udfff{words.WORD_BREAK}]")
_TAG = re.compile(r"<[^>]*>")

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_TEXT_SUFFIXES = {".txt", ".text", ".md", ".csv", ".tsv", ".log", ".json", ".xml", ".rtf"}
# What tesseract (through leptonica) reads.
_IMAGE_TYPES = {"image/png", "image/jpeg", "image/tiff", "image/bmp", "image/gif", "image/webp"}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
#: What a DOCX's XML parts, and all its parts, may unpack to (bench/README.md: what parsing
#: takes in memory).
DOCX_MAX_XML_BYTES = 64 * 1024 * 1024
DOCX_MAX_UNPACKED_BYTES = 256 * 1024 * 1024
#: Resolution pages of an image-only PDF are drawn at for OCR (tesseract's sweet spot).
OCR_DPI = 300


class ExtractionFailed(Exception):
    """The file's text cannot be read; the message says why, for a person."""


class Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self.until = clock() + seconds

    def check(self) -> None:
        if self.remaining() <= 0:
            raise ExtractionFailed(f"Reading the text took longer than {self.seconds:g} s.")

    def remaining(self) -> float:
        return self.until - self.clock()


@dataclass(frozen=True)
class Ocr:
    """Optical character recognition by the `tesseract` program, in `languages` (tesseract's
    `-l`, such as `eng+deu`); image-only PDFs also need poppler's `pdftoppm`."""

    languages: str = "eng"

    def read_image(self, data: bytes, deadline: Deadline) -> str:
        return self._run(["tesseract", "stdin", "stdout", "-l", self.languages], data, deadline)

    def read_pdf_pages(self, data: bytes, deadline: Deadline) -> Iterator[str]:
        """The text of each page of a PDF, drawn as an image and read by OCR."""
        with tempfile.TemporaryDirectory(prefix="casefolio-ocr-") as folder:
            source = Path(folder) / "in.pdf"
            source.write_bytes(data)
            self._run(
                ["pdftoppm", "-r", str(OCR_DPI), "-gray", "-png", str(source), f"{folder}/page"],
                b"",
                deadline,
            )
            for page in sorted(Path(folder).glob("page*.png")):
                deadline.check()
                yield self.read_image(page.read_bytes(), deadline)

    @staticmethod
    def _run(command: list[str], stdin: bytes, deadline: Deadline) -> str:
        if shutil.which(command[0]) is None:
            package = "tesseract-ocr" if command[0] == "tesseract" else "poppler-utils"
            raise ExtractionFailed(
                f"OCR is on but the {command[0]} program is not installed"
                f" (Debian: apt-get install {package})."
            )
        try:
            done = subprocess.run(
                command, input=stdin, capture_output=True, timeout=max(deadline.remaining(), 0.1)
            )
        except subprocess.TimeoutExpired:
            raise ExtractionFailed(
                f"Reading the text took longer than {deadline.seconds:g} s."
            ) from None
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise ExtractionFailed(
                f"{command[0]} could not read the file: {said[-1] if said else done.returncode}"
            )
        return done.stdout.decode("utf-8", "replace")


def kind_of(file_name: str, content_type: str, head: bytes, *, ocr: bool = False) -> str | None:
    """Which reader a file needs ("text", "pdf", "docx", "eml", with OCR "image"), or None."""
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
    if ocr and (media in _IMAGE_TYPES or suffix in _IMAGE_SUFFIXES):
        return "image"
    return None


def extract(
    data: bytes,
    *,
    file_name: str,
    content_type: str,
    deadline: Deadline,
    max_chars: int,
    ocr: Ocr | None = None,
) -> str:
    """The file's text, cleaned (no NUL, nothing a database cannot store) and cut at
    `max_chars`; ExtractionFailed with the reason if it cannot be read. With `ocr`, images
    and PDFs without a text layer are read by OCR."""
    kind = kind_of(file_name, content_type, data[:8], ocr=ocr is not None)
    if kind is None:
        raise ExtractionFailed(f"casefolio does not read text from {content_type} files.")
    readers: dict[str, Callable[[bytes, Deadline], Iterator[str]]] = {
        "text": _text,
        "pdf": functools.partial(_pdf, ocr=ocr),
        "docx": _docx,
        "eml": _eml,
    }
    if ocr is not None:
        readers["image"] = lambda image, limit: iter([ocr.read_image(image, limit)])
    reader = readers[kind]
    try:
        parts: list[str] = []
        size = 0
        for part in reader(data, deadline):
            parts.append(part)
            size += len(part) + 1
            if size >= max_chars:
                break
            deadline.check()
    except (ExtractionFailed, MemoryError):  # the latter: search/sandbox.py's limit
        raise
    except Exception as exc:  # a malformed file: any of the readers' errors
        raise ExtractionFailed(f"The {kind} file cannot be read: {_brief(exc)}") from exc
    # Compatibility forms folded (NFKC), as query.parse folds the query: PDFs spell "fi" as
    # the ligature U+FB01, which SQLite's tokenizer keeps as a letter of its own.
    folded = unicodedata.normalize("NFKC", "\n".join(parts))
    return words.split(_UNSTORABLE.sub(" ", folded)[:max_chars])


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


def _pdf(data: bytes, deadline: Deadline, *, ocr: Ocr | None = None) -> Iterator[str]:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise ExtractionFailed("The PDF is encrypted with a password.")
    found = False
    for page in reader.pages:
        deadline.check()
        text = page.extract_text() or ""
        found = found or bool(text.strip())
        yield text
    if not found and ocr is not None:  # a scan: pages that are pictures of text
        yield from ocr.read_pdf_pages(data, deadline)


def _docx(data: bytes, deadline: Deadline) -> Iterator[str]:
    import docx

    try:
        _check_unpacked_size(data)
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExtractionFailed(f"The DOCX file cannot be read: {_brief(exc)}") from exc
    for paragraph in document.paragraphs:
        yield paragraph.text
    for table in document.tables:
        deadline.check()
        for row in table.rows:
            yield "\t".join(cell.text for cell in row.cells)


def _check_unpacked_size(data: bytes) -> None:
    """Refuse a DOCX whose parts unpack to more than python-docx should hold: it reads every
    part into memory and parses the XML ones whole, so a few MB of zipped repetition (a zip
    bomb) would take gigabytes. The sizes a zip declares bound what zipfile will unpack."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = archive.infolist()
    xml = sum(p.file_size for p in parts if p.filename.endswith((".xml", ".rels")))
    if xml > DOCX_MAX_XML_BYTES or sum(p.file_size for p in parts) > DOCX_MAX_UNPACKED_BYTES:
        raise ExtractionFailed(
            f"The DOCX file unpacks to more than casefolio reads ({DOCX_MAX_XML_BYTES:,} bytes "
            f"of XML, {DOCX_MAX_UNPACKED_BYTES:,} in all)."
        )


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
