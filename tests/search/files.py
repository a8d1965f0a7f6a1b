"""Real small files of each kind search reads, made here: PDF (written by hand: one page,
one text stream, a correct cross-reference table), DOCX (python-docx), EML (email), and for
OCR pictures of text: a PNG drawn from such a PDF by poppler's pdftoppm, and a scanned PDF
(a page that is one grey-scale image, no text)."""

from __future__ import annotations

import io
import subprocess
import tempfile
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

SCAN_DPI = 150


def _pdf_file(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _drawn(pdf_bytes: bytes, *, png: bool) -> bytes:
    """The first page of a PDF drawn in grey by pdftoppm: PNG, or raw PGM (P5)."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.pdf"
        source.write_bytes(pdf_bytes)
        formats = ["-png"] if png else []
        subprocess.run(
            ["pdftoppm", "-r", str(SCAN_DPI), "-gray", *formats, str(source), f"{folder}/p"],
            check=True,
        )
        [page] = Path(folder).glob("p*")
        return page.read_bytes()


def picture_of_text(*lines: str) -> bytes:
    """A PNG image of the lines, as a scanner or a phone camera would give them."""
    return _drawn(pdf(*lines), png=True)


def scanned_pdf(*lines: str) -> bytes:
    """A one-page PDF whose page is a picture of the lines: no text for pypdf to find."""
    pgm = _drawn(pdf(*lines), png=False)
    magic, width, height, depth, pixels = pgm.split(maxsplit=4)
    assert magic == b"P5" and depth == b"255", pgm[:20]
    image = zlib.compress(pixels)
    contents = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
    return _pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /XObject << /Im1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(contents) + contents + b"\nendstream",
            b"<< /Type /XObject /Subtype /Image /Width %s /Height %s /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n"
            % (width, height, len(image))
            + image
            + b"\nendstream",
        ]
    )


def pdf(*lines: str) -> bytes:
    def escape(line: str) -> str:
        return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    shown = " ".join(f"({escape(line)}) Tj 0 -14 Td" for line in lines)
    stream = f"BT /F1 12 Tf 72 720 Td {shown} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return _pdf_file(objects)


def docx(*paragraphs: str, table: list[list[str]] | None = None) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def docx_unpacking_to(*, xml: int = 0, media: int = 0) -> bytes:
    """A small valid DOCX whose document.xml is padded (with white space after its root) to
    `xml` bytes, with a part of `media` zero bytes: a zip bomb, a few hundred KB zipped."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(docx("Heads of terms"))) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb,
    ):
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "word/document.xml" and xml > len(content):
                content += b" " * (xml - len(content))
            bomb.writestr(item.filename, content)
        if media:
            with bomb.open("word/media/padding.bin", "w", force_zip64=True) as padding:
                for _ in range(media // (1 << 20)):
                    padding.write(bytes(1 << 20))
    return out.getvalue()


def eml(*, subject: str, body: str, attachment: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "Ada Counsel <ada@example.com>"
    message["To"] = "Bob Client <bob@example.com>"
    message["Subject"] = subject
    message.set_content(body)
    if attachment:
        message.add_attachment(
            b"%PDF-1.4 not read", maintype="application", subtype="pdf", filename=attachment
        )
    return bytes(message)
