"""Extraction of each kind of file, its limits and its refusals (no database)."""

from __future__ import annotations

import pytest

from casefolio.search import extract
from casefolio.search.extract import Deadline, ExtractionFailed
from tests.search import files


def run(data: bytes, name: str, content_type: str = "application/octet-stream") -> str:
    return extract.extract(
        data, file_name=name, content_type=content_type, deadline=Deadline(30), max_chars=10_000
    )


def test_pdf_text_comes_out_of_a_real_pdf() -> None:
    text = run(files.pdf("The indemnity cap is ten million.", "Second line"), "cap.pdf")
    assert "indemnity cap" in text and "Second line" in text


def test_docx_paragraphs_and_tables() -> None:
    data = files.docx("Heads of terms", table=[["Party", "Escrow agent"]])
    text = run(data, "terms.docx")
    assert "Heads of terms" in text and "Escrow agent" in text


def test_eml_headers_body_and_attachment_names() -> None:
    data = files.eml(subject="Settlement", body="Without prejudice offer", attachment="offer.pdf")
    text = run(data, "mail.eml", "message/rfc822")
    for expected in ("Subject: Settlement", "ada@example.com", "Without prejudice", "offer.pdf"):
        assert expected in text


def test_text_in_a_legacy_charset_is_detected() -> None:
    data = "Le délai de préavis est échu. Über die Gebühren wird später entschieden.".encode(
        "cp1252"
    )
    text = run(data, "note.txt", "text/plain")
    assert "délai" in text and "Gebühren" in text


def test_text_is_cut_and_cleaned() -> None:
    data = ("word\ue000 " * 10_000).encode()
    text = run(data, "long.txt", "text/plain")
    assert len(text) <= 10_000 and "\ue000" not in text


def test_chinese_and_japanese_are_split_into_characters_and_no_file_holds_the_break() -> None:
    """search/words.py: the break between such characters is casefolio's own; one in a file
    is a separator like any control character, or a snippet would lose it."""
    text = run("東京の ABC株式 x\x01y 한국어".encode(), "a.txt", "text/plain")
    assert text == "東\x01京\x01の ABC\x01株\x01式 x y 한국어"


@pytest.mark.parametrize(
    ("data", "name", "says"),
    [
        (b"%PDF-1.4 garbage", "broken.pdf", "The pdf file cannot be read"),
        (b"PK\x03\x04 not a zip", "broken.docx", "DOCX file cannot be read"),
        (b"\x89PNG\r\n\x1a\n", "scan.png", "does not read text from"),
        (b"\x00\x01\x02binary", "data.txt", "binary"),
    ],
)
def test_unreadable_files_fail_with_a_reason(data: bytes, name: str, says: str) -> None:
    with pytest.raises(ExtractionFailed, match=says):
        run(data, name, "image/png" if name.endswith(".png") else "application/octet-stream")


@pytest.mark.parametrize(
    "unpacked",
    [
        {"xml": extract.DOCX_MAX_XML_BYTES + 1},
        {"media": extract.DOCX_MAX_UNPACKED_BYTES + (1 << 20)},
    ],
    ids=["xml", "media"],
)
def test_a_docx_that_unpacks_past_the_limits_is_refused_unread(unpacked: dict[str, int]) -> None:
    bomb = files.docx_unpacking_to(**unpacked)
    assert len(bomb) < 2_000_000
    with pytest.raises(ExtractionFailed, match="unpacks to more than casefolio reads"):
        run(bomb, "bomb.docx")
    # Padded to 8 MB, under the limit (and under libxml2's own 10 MB for one text node),
    # the same document is read.
    fits = files.docx_unpacking_to(xml=8 << 20)
    assert "Heads of terms" in run(fits, "fits.docx")


def test_the_time_limit_is_checked_with_an_injected_clock() -> None:
    ticks = iter([0.0, 100.0, 200.0, 300.0])
    deadline = Deadline(5, clock=lambda: next(ticks))
    with pytest.raises(ExtractionFailed, match="longer than 5 s"):
        extract.extract(
            files.pdf("one"), file_name="a.pdf", content_type="", deadline=deadline, max_chars=100
        )
