"""OCR (CASEFOLIO_SEARCH_OCR): pictures of text and scanned PDFs made by the tests, read by
the real tesseract and pdftoppm programs; off by default; a missing program is a reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.search import extract
from casefolio.search.extract import Deadline, ExtractionFailed, Ocr
from casefolio.search.index import Indexer
from tests.search import files
from tests.search.conftest import Matter, index_all, titles, upload

pytestmark = pytest.mark.ocr
CLAUSE = ("The indemnity cap is ten million pounds.", "Signed by the liquidator.")


def read(data: bytes, name: str, content_type: str, ocr: Ocr | None) -> str:
    return extract.extract(
        data,
        file_name=name,
        content_type=content_type,
        deadline=Deadline(60),
        max_chars=10_000,
        ocr=ocr,
    )


def test_a_picture_of_text_is_read_only_with_ocr_on() -> None:
    picture = files.picture_of_text(*CLAUSE)
    with pytest.raises(ExtractionFailed, match="does not read text from image/png"):
        read(picture, "clause.png", "image/png", None)
    text = read(picture, "clause.png", "image/png", Ocr())
    assert "indemnity cap" in text and "liquidator" in text


def test_a_scanned_pdf_is_read_by_ocr_and_a_text_pdf_is_not_drawn() -> None:
    scan = files.scanned_pdf(*CLAUSE)
    assert read(scan, "scan.pdf", "application/pdf", None).strip() == ""
    assert "indemnity cap" in read(scan, "scan.pdf", "application/pdf", Ocr())
    # A PDF with a text layer keeps its exact text (OCR would not give "ten million" back
    # letter for letter every time, and costs seconds).
    typed = files.pdf("Exactly these words: qzx-17.")
    assert "qzx-17" in read(typed, "typed.pdf", "application/pdf", Ocr())


def test_a_missing_program_and_an_unreadable_image_are_reasons(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ExtractionFailed, match="tesseract could not read the file"):
        read(b"\x89PNG\r\n\x1a\nnot really", "broken.png", "image/png", Ocr())
    picture = files.picture_of_text(*CLAUSE[:1])
    # A PATH without the programs: what a server without tesseract installed sees.
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("tesseract") is None
    with pytest.raises(ExtractionFailed, match="apt-get install tesseract-ocr"):
        read(picture, "a.png", "image/png", Ocr())


def test_an_unknown_language_is_a_reason_not_a_crash() -> None:
    with pytest.raises(ExtractionFailed, match="tesseract could not read the file"):
        read(files.picture_of_text(*CLAUSE), "a.png", "image/png", Ocr("xx_nolang"))


async def test_with_ocr_on_uploaded_scans_are_found_by_search(
    client: httpx.AsyncClient, matter: Matter, settings: Settings, db: Database
) -> None:
    await upload(
        client, matter.writer, matter.id, "photo.png", files.picture_of_text(*CLAUSE), "image/png"
    )
    await upload(
        client, matter.writer, matter.id, "scan.pdf", files.scanned_pdf(*CLAUSE), "application/pdf"
    )
    reading = Indexer(settings.model_copy(update={"search_ocr": True}), db)
    try:
        await index_all(reading)
    finally:
        await reading.close()
    status = await client.get("/api/v1/search/status", headers=matter.reader.headers)
    assert (status.json()["done"], status.json()["failed"]) == (2, 0), status.text
    assert await titles(client, matter.reader, "indemnity cap") == {"photo.png", "scan.pdf"}
    assert await titles(client, matter.reader, '"ten million"') == {"photo.png", "scan.pdf"}
