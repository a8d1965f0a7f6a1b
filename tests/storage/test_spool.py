"""Spooling raw and multipart upload bodies into a staging folder."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import anyio
import pytest

from casefolio.domain.errors import Invalid, TooLarge
from casefolio.storage.base import SpooledFile
from casefolio.storage.multipart import (
    MAX_PART_HEADER_BYTES,
    MAX_PARTS,
    METADATA_MAX_BYTES,
    OTHER_PART_MAX_BYTES,
    spool_multipart,
)
from casefolio.storage.spool import HOLD_BYTES, spool_stream

BOUNDARY = "----casefolioBoundary7MA4YWxkTrZu0gW"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


async def chunked(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def from_parts(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def failing_after(data: bytes, exc: BaseException) -> AsyncIterator[bytes]:
    async for chunk in chunked(data):
        yield chunk
    raise exc


def part(name: str, data: bytes, *, filename: str | None = None, ctype: str | None = None) -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\n{disposition}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode() + b"\r\n" + data + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def content(spooled: SpooledFile) -> bytes:
    return spooled.held if spooled.held is not None else spooled.path.read_bytes()


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    path = tmp_path / "staging"
    path.mkdir()
    return path


async def test_spool_stream_hashes_and_counts(staging: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    spooled = await spool_stream(chunked(data), staging_dir=staging, max_bytes=len(data))
    assert spooled.sha256 == hashlib.sha256(data).hexdigest()
    assert spooled.size == len(data)
    assert spooled.path.parent == staging
    assert spooled.path.read_bytes() == data


async def test_spool_stream_empty_body(staging: Path) -> None:
    spooled = await spool_stream(from_parts([]), staging_dir=staging, max_bytes=10)
    assert (spooled.size, spooled.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert spooled.held == b""
    assert list(staging.iterdir()) == []


@pytest.mark.parametrize(
    ("size", "held"), [(1, True), (4096, True), (HOLD_BYTES, True), (HOLD_BYTES + 1, False)]
)
async def test_spool_stream_holds_a_small_body_in_memory(
    staging: Path, size: int, held: bool
) -> None:
    data = os.urandom(size)
    spooled = await spool_stream(chunked(data, 1000), staging_dir=staging, max_bytes=1 << 20)
    assert (spooled.size, spooled.sha256) == (size, hashlib.sha256(data).hexdigest())
    assert content(spooled) == data
    # Held: nothing on disk yet, and the name it will be written under is free in staging.
    assert (spooled.held is not None) == held
    assert list(staging.iterdir()) == ([] if held else [spooled.path])
    assert spooled.path.parent == staging


async def test_spool_stream_over_limit(staging: Path) -> None:
    with pytest.raises(TooLarge) as info:
        await spool_stream(chunked(b"x" * 5000, 100), staging_dir=staging, max_bytes=4999)
    assert info.value.message == "The upload is larger than the maximum of 4999 bytes."
    assert list(staging.iterdir()) == []


async def test_spool_stream_failure_mid_stream_removes_temp(staging: Path) -> None:
    data = os.urandom(3 * 1024 * 1024)  # several batches written before the failure
    with pytest.raises(ConnectionResetError):
        await spool_stream(
            failing_after(data, ConnectionResetError("client went away")),
            staging_dir=staging,
            max_bytes=1 << 30,
        )
    assert list(staging.iterdir()) == []


async def test_spool_stream_cancelled_removes_temp(staging: Path) -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b"x" * 2 * 1024 * 1024
        await anyio.sleep(3600)
        yield b"never"

    with anyio.move_on_after(0.5):
        await spool_stream(slow(), staging_dir=staging, max_bytes=1 << 30)
    assert list(staging.iterdir()) == []


async def test_multipart_with_metadata_and_file(staging: Path) -> None:
    # The content contains a near-boundary to make sure the parser does not split on it.
    content = os.urandom(2 * 1024 * 1024 + 5) + f"\r\n--{BOUNDARY[:-3]}".encode()
    raw = body(
        part("metadata", b'{"title": "Exhibit A"}', ctype="application/json"),
        part("file", content, filename="Exhibit A.pdf", ctype="application/pdf"),
        part("ignored", b"whatever"),
    )
    upload = await spool_multipart(
        chunked(raw), content_type=CONTENT_TYPE, staging_dir=staging, max_bytes=len(content)
    )
    assert upload.file.sha256 == hashlib.sha256(content).hexdigest()
    assert upload.file.size == len(content)
    assert upload.file.path.read_bytes() == content
    assert upload.file_name == "Exhibit A.pdf"
    assert upload.file_content_type == "application/pdf"
    assert upload.metadata == b'{"title": "Exhibit A"}'
    assert list(staging.iterdir()) == [upload.file.path]


async def test_multipart_in_tiny_chunks_file_first(staging: Path) -> None:
    raw = body(part("file", b"tiny\r\ncontent", filename="t.txt"), part("metadata", b"{}"))
    upload = await spool_multipart(
        chunked(raw, 7), content_type=CONTENT_TYPE, staging_dir=staging, max_bytes=100
    )
    assert upload.file.held == b"tiny\r\ncontent"  # small: held, not staged
    assert list(staging.iterdir()) == []
    assert (upload.file_name, upload.file_content_type) == ("t.txt", None)
    assert upload.metadata == b"{}"


async def test_multipart_without_metadata(staging: Path) -> None:
    upload = await spool_multipart(
        chunked(body(part("file", b"abc"))),
        content_type=CONTENT_TYPE,
        staging_dir=staging,
        max_bytes=10,
    )
    assert upload.metadata is None
    assert upload.file_name is None
    assert upload.file.size == 3
    assert upload.file.held == b"abc"


@pytest.mark.parametrize(("size", "held"), [(HOLD_BYTES, True), (HOLD_BYTES + 1, False)])
async def test_multipart_holds_a_file_part_up_to_the_hold(
    staging: Path, size: int, held: bool
) -> None:
    data = os.urandom(size)  # the body around it is larger than HOLD_BYTES either way
    upload = await spool_multipart(
        chunked(body(part("metadata", b"{}"), part("file", data))),
        content_type=CONTENT_TYPE,
        staging_dir=staging,
        max_bytes=len(data),
    )
    assert content(upload.file) == data
    assert (upload.file.held is not None) == held
    assert list(staging.iterdir()) == ([] if held else [upload.file.path])


@pytest.mark.parametrize(
    ("raw", "content_type", "message"),
    [
        (body(part("metadata", b"{}")), CONTENT_TYPE, "no `file` part"),
        (b"", CONTENT_TYPE, "no `file` part"),
        (b"this is not multipart at all\r\n\r\n" * 50, CONTENT_TYPE, "not valid multipart"),
        (body(part("file", b"abc")), "application/json", "must be multipart/form-data"),
        (body(part("file", b"abc")), "multipart/form-data", "must be multipart/form-data"),
        (body(part("file", b"abc"))[:-40], CONTENT_TYPE, "ended before"),
        (
            body(part("file", b"abc", filename="a.txt").replace(b"a.txt", b"\xff\xfe.txt")),
            CONTENT_TYPE,
            "a part's headers are not UTF-8",
        ),
        (
            body(part("file", b"one", filename="a"), part("file", b"two", filename="b")),
            CONTENT_TYPE,
            "more than one `file` part",
        ),
        (
            body(part("metadata", b"x" * (METADATA_MAX_BYTES + 1)), part("file", b"abc")),
            CONTENT_TYPE,
            f"`metadata` part is larger than {METADATA_MAX_BYTES} bytes",
        ),
    ],
    ids=[
        "no-file",
        "empty",
        "garbage",
        "not-multipart",
        "no-boundary",
        "truncated",
        "latin-1-headers",
        "two-files",
        "big-metadata",
    ],
)
async def test_multipart_invalid(
    staging: Path, raw: bytes, content_type: str, message: str
) -> None:
    with pytest.raises(Invalid) as info:
        await spool_multipart(
            chunked(raw, 1000), content_type=content_type, staging_dir=staging, max_bytes=1000
        )
    assert message in info.value.message
    assert list(staging.iterdir()) == []


async def test_multipart_file_over_limit(staging: Path) -> None:
    raw = body(part("file", b"x" * 5000, filename="big.bin"))
    with pytest.raises(TooLarge) as info:
        await spool_multipart(
            chunked(raw, 512), content_type=CONTENT_TYPE, staging_dir=staging, max_bytes=4999
        )
    assert info.value.message == "The upload is larger than the maximum of 4999 bytes."
    assert list(staging.iterdir()) == []


async def test_multipart_failure_mid_stream_removes_temp(staging: Path) -> None:
    raw = body(part("file", os.urandom(3 * 1024 * 1024), filename="x"))
    with pytest.raises(ConnectionResetError):
        await spool_multipart(
            failing_after(raw[: 2 * 1024 * 1024], ConnectionResetError("client went away")),
            content_type=CONTENT_TYPE,
            staging_dir=staging,
            max_bytes=1 << 30,
        )
    assert list(staging.iterdir()) == []


async def test_multipart_memory_stays_flat(staging: Path) -> None:
    size = 48 * 1024 * 1024
    block = os.urandom(64 * 1024)

    async def stream() -> AsyncIterator[bytes]:
        head = part("file", b"", filename="big.bin", ctype="application/octet-stream")
        yield head[: -len(b"\r\n")]  # headers; content follows
        for _ in range(size // len(block)):
            yield block
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    tracemalloc.start()
    try:
        upload = await spool_multipart(
            stream(), content_type=CONTENT_TYPE, staging_dir=staging, max_bytes=size
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert upload.file.size == size
    assert upload.file.sha256 == hashlib.sha256(block * (size // len(block))).hexdigest()
    print(f"peak traced memory {peak} bytes")
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak} bytes"


class Endless:
    """A body that starts with `head` and then repeats `tail` for ever, counting the bytes
    it was asked for: a refusal must come long before the end of such a body."""

    def __init__(self, head: bytes, tail: bytes) -> None:
        self.head, self.tail, self.sent = head, tail, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = self.head
        while True:
            self.sent += len(chunk)
            yield chunk
            chunk = self.tail * max(1, 65536 // len(self.tail))


EMPTY_PART = part("extra", b"")


@pytest.mark.parametrize(
    ("head", "tail", "message"),
    [
        (EMPTY_PART, EMPTY_PART, f"more than {MAX_PARTS} parts"),
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n'.encode(),
            b"X-Filler: yes\r\n",
            f"more than {MAX_PART_HEADER_BYTES} bytes of headers",
        ),
        (part("extra", b"")[:-2], b"x" * 1000, f"larger than {OTHER_PART_MAX_BYTES} bytes"),
        (f"--{BOUNDARY}\r\n\r\n".encode(), b"x" * 1000, f"larger than {OTHER_PART_MAX_BYTES}"),
        (part("metadata", b"")[:-2], b"{" * 1000, f"larger than {METADATA_MAX_BYTES} bytes"),
    ],
    ids=["many-parts", "endless-headers", "big-extra-part", "nameless-part", "big-metadata"],
)
async def test_a_multipart_body_over_a_part_limit_is_refused_before_it_is_read(
    staging: Path, head: bytes, tail: bytes, message: str
) -> None:
    stream = Endless(head, tail)
    with pytest.raises(Invalid) as info:
        await spool_multipart(
            stream.__aiter__(), content_type=CONTENT_TYPE, staging_dir=staging, max_bytes=10**9
        )
    assert message in info.value.message
    # Refused within a couple of batches past the limit, not at the (endless) end.
    assert stream.sent < 4 * 1024 * 1024
    assert list(staging.iterdir()) == []


async def test_a_few_small_extra_parts_are_accepted(staging: Path) -> None:
    extras = [part(f"extra{i}", b"x" * 100) for i in range(MAX_PARTS - 2)]
    raw = body(*extras, part("metadata", b"{}"), part("file", b"abc", filename="a.txt"))
    upload = await spool_multipart(
        chunked(raw, 7), content_type=CONTENT_TYPE, staging_dir=staging, max_bytes=1000
    )
    assert content(upload.file) == b"abc"
    assert upload.metadata == b"{}"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("C:\\Users\\me\\brief.pdf", "C:\\Users\\me\\brief.pdf"),
        ("brief.pdf", "brief.pdf"),
    ],
)
async def test_the_file_part_keeps_the_backslashes_of_its_filename(
    staging: Path, sent: str, kept: str
) -> None:
    raw = body(part("file", b"abc", filename=sent))
    upload = await spool_multipart(
        chunked(raw, 5), content_type=CONTENT_TYPE, staging_dir=staging, max_bytes=1000
    )
    assert upload.file_name == kept
