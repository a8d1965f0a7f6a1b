"""Receive an upload into a store's staging folder, hashing it on the way.

Bytes arrive on the event loop; hashing, parsing and writing happen in a worker
thread in ~1 MiB batches, so neither CPU nor disk work blocks other requests
and memory stays flat (two batches at most) however large the upload is. A small
upload (HOLD_BYTES) is the exception: hashed on the loop and held in memory, it
reaches the disk only in the store's `put`. A multipart body goes through the same
writer, parsed on the way (storage/multipart.py).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterable
from pathlib import Path

import anyio
import anyio.to_thread

from casefolio.domain.errors import TooLarge
from casefolio.storage import staging
from casefolio.storage.base import SpooledFile

#: Bytes collected on the event loop before one trip to the worker thread.
BATCH_BYTES = 1024 * 1024

#: A body up to this size is kept in memory, not staged: hashing it on the loop costs less
#: than a trip to a worker thread, and the store writes it where it belongs in one step
#: (the local store: one thread trip instead of two; S3: no file at all). 64 KiB per
#: upload in flight, held for as long as one of BATCH_BYTES would be.
HOLD_BYTES = 64 * 1024


def too_large(max_bytes: int) -> TooLarge:
    return TooLarge(f"The upload is larger than the maximum of {max_bytes} bytes.")


class TempWriter:
    """A temp file in the staging folder plus a running SHA-256; or, while everything
    written fits in ``hold`` bytes, those bytes in memory and no file at all.

    A file is created by the first write beyond ``hold``, never by the constructor:
    creating a file can wait for the file system's journal, which must not happen on the
    event loop. A write that `holds` touches no disk and may run on the loop; any other
    call may block: run it in a worker thread, one at a time. A caller that is cancelled
    still sees the thread's work finish (anyio waits for it), so its `discard()`
    afterwards always finds the file it must remove.

    Unbuffered (writes arrive in ~1 MiB batches already): a buffered file object would cost
    three more system calls per upload, each a trip through the GIL under concurrency.
    """

    def __init__(self, staging_dir: Path, *, hold: int = 0) -> None:
        self._staging_dir = staging_dir
        self._hold = hold
        self._held: list[bytes] = []
        self._fd = -1
        self.path: Path | None = None
        self._hash = hashlib.sha256()
        self.size = 0

    def holds(self, batch: list[bytes]) -> bool:
        """Whether writing `batch` would keep everything in memory (no disk, no blocking)."""
        return self._fd < 0 and self.size + sum(map(len, batch)) <= self._hold

    def write(self, data: bytes) -> None:
        self._hash.update(data)  # hashlib releases the GIL on large buffers
        if self.holds([data]):
            self._held.append(data)
        else:
            if self._fd < 0:
                # Named for this process, so that a restart can tell its leftovers apart.
                self._fd, self.path = staging.temp_file(self._staging_dir, "upload")
                held, self._held = b"".join(self._held), []
                write_all(self._fd, held)
            write_all(self._fd, data)
        self.size += len(data)

    def finish(self) -> SpooledFile:
        if self._fd < 0:
            # Never left memory (an empty body neither): the store writes it where it
            # belongs, in one step.
            return SpooledFile(
                path=staging.temp_name(self._staging_dir, "upload"),
                sha256=self._hash.hexdigest(),
                size=self.size,
                held=b"".join(self._held),
            )
        # Written, not synced: a staged file is never what a row points at. The local
        # store's put() fsyncs it before naming it a blob; S3 keeps its own copy.
        fd, self._fd = self._fd, -1
        os.close(fd)
        if self.path is None:  # set when the first chunk spilled to disk
            raise RuntimeError("a spooled upload finished with no staging file")
        return SpooledFile(path=self.path, sha256=self._hash.hexdigest(), size=self.size)

    def discard(self) -> None:
        try:
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                os.close(fd)
        finally:
            if self.path is not None:
                self.path.unlink(missing_ok=True)


def write_all(fd: int, data: bytes) -> None:
    """os.write until all of `data` is written (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def batches(chunks: AsyncIterable[bytes]) -> AsyncIterable[list[bytes]]:
    """Group incoming chunks (often 64 KiB) into ~1 MiB lists, to amortise thread hops."""
    batch: list[bytes] = []
    pending = 0
    async for chunk in chunks:
        if not chunk:
            continue
        batch.append(chunk)
        pending += len(chunk)
        if pending >= BATCH_BYTES:
            yield batch
            batch, pending = [], 0
    if batch:
        yield batch


async def discard(writer: TempWriter) -> None:
    if writer.path is None:
        return  # nothing reached the disk
    # Shielded: a cancelled request (client gone) must still remove its temp file.
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(writer.discard)


async def spool_stream(
    chunks: AsyncIterable[bytes], *, staging_dir: Path, max_bytes: int
) -> SpooledFile:
    """Write a raw request body to a temp file in ``staging_dir``, or hold it in memory if
    it is at most HOLD_BYTES.

    Raises ``TooLarge`` beyond ``max_bytes``. On any failure (including a client
    disconnect or cancellation) the temp file is removed before re-raising.
    """
    writer = TempWriter(staging_dir, hold=HOLD_BYTES)
    try:
        received = 0
        # Each batch is written once the next one has arrived, so that the last is written
        # in the same trip to the worker thread as the close: one trip for a small upload.
        pending: list[bytes] = []
        async for batch in batches(chunks):
            # Counted on the loop, before writing, so an oversized body never lands on disk.
            received += sum(map(len, batch))
            if received > max_bytes:
                raise too_large(max_bytes)
            if pending:
                await anyio.to_thread.run_sync(_write_batch, writer, pending)
            pending = batch
        if writer.holds(pending):
            return _write_and_finish(writer, pending)
        return await anyio.to_thread.run_sync(_write_and_finish, writer, pending)
    except BaseException:
        await discard(writer)
        raise


def _write_batch(writer: TempWriter, batch: list[bytes]) -> None:
    writer.write(b"".join(batch))


def _write_and_finish(writer: TempWriter, batch: list[bytes]) -> SpooledFile:
    _write_batch(writer, batch)
    return writer.finish()
