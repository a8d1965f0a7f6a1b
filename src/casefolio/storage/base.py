"""The blob store contract: content-addressed, immutable bytes keyed by their SHA-256."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from casefolio.storage import staging

#: Largest chunk ``BlobStore.read`` yields; keeps per-download memory bounded.
READ_CHUNK_BYTES = 1024 * 1024

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SpooledFile:
    """A fully received upload: a file in a store's staging directory, or (a small one)
    its bytes in memory, `held`, which ``put`` writes where the store needs them."""

    #: The staged file; for a held upload, a free name in staging that ``put`` may write
    #: it under (nothing is there yet).
    path: Path
    sha256: str
    size: int
    held: bytes | None = field(default=None, repr=False)  # kept out of logs and tracebacks


class BlobMissing(Exception):
    """The blob is not in the store (a row pointing at it means the store lost data)."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"Blob {sha256} is not in the blob store.")
        self.sha256 = sha256


class BlobStoreUnavailable(Exception):
    """The blob store did not answer, or refused us (S3 down or unreachable, its credentials
    wrong): nothing was stored or read. Passing, for the client; the log has the cause."""


class BlobsNotStored(Exception):
    """``put_many`` stored some blobs but not these: ``errors`` maps each sha256 to its cause.

    Every blob of the batch not named here is durable. A sha256 is named when any
    copy of it in the batch failed, even if another copy made it.
    """

    def __init__(self, errors: Mapping[str, BaseException]) -> None:
        first = next(iter(errors.values()), None)
        super().__init__(f"{len(errors)} blob(s) not stored; first error: {first}")
        self.errors = dict(errors)


def check_sha256(sha256: str) -> str:
    """Return ``sha256`` if it is 64 lowercase hex digits, else raise ``ValueError``.

    Every store calls this before turning a digest into a path or key, so a
    crafted value such as ``../../etc/passwd`` can never address anything.
    """
    if not isinstance(sha256, str) or _SHA256.fullmatch(sha256) is None:
        raise ValueError(f"Not a SHA-256 hex digest: {sha256!r}")
    return sha256


def blob_key(sha256: str) -> str:
    """Where a blob lives under a store's root or prefix: ``ab/cd/<sha256>`` (two fan-out
    levels keep every folder small); ``ValueError`` for anything but a digest."""
    check_sha256(sha256)
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def check_range(start: int, end: int | None) -> None:
    """Reject negative or inverted byte ranges (``end`` is exclusive)."""
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"Invalid byte range: start={start}, end={end}")


class StagingStore:
    """The part every store shares: a staging folder where uploads wait, whole, for ``put``,
    in which this process holds a claim (storage/staging.py) until ``close``."""

    def __init__(self, staging_dir: Path) -> None:
        self.staging_dir = staging_dir
        self.staging_dir.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(staging.release, self.staging_dir)


def unlink(path: Path) -> None:
    """Remove a file if it is there (a blob, or a staged upload that is done with)."""
    path.unlink(missing_ok=True)


class BlobStore(Protocol):
    """Where document bytes live. Blobs are immutable and named by their SHA-256."""

    #: Local folder uploads are spooled into before ``put``. For the local store it is
    #: on the blobs' filesystem, so ``put`` is a rename rather than a copy.
    staging_dir: Path

    async def put(self, spooled: SpooledFile) -> None:
        """Make the blob durable under ``spooled.sha256`` before returning.

        Consumes the spooled file (it is gone afterwards, also on failure).
        Idempotent: if the blob exists already, its modification time is
        refreshed so garbage collection's grace period protects it again.
        """
        ...

    async def put_many(self, spooled: Sequence[SpooledFile]) -> None:
        """``put`` for a batch: every blob is durable when this returns normally.

        Cheaper than one ``put`` per file where the store can share the work (the
        local store flushes the whole batch at once). Consumes every
        spooled file, also on failure. Raises ``BlobsNotStored`` naming the blobs
        that failed (the rest are durable); any other exception means none may be.
        The same sha256 may appear more than once.
        """
        ...

    async def exists(self, sha256: str) -> bool: ...

    async def modified(self, sha256: str) -> datetime | None:
        """When the blob was last stored (``put`` refreshes it), or None if it is missing."""
        ...

    def local_path(self, sha256: str) -> Path | None:
        """Return the blob's file for zero-copy serving, or None for remote stores."""
        ...

    def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Stream bytes ``[start, end)`` in chunks of at most 1 MiB.

        Raises ``BlobMissing`` (on first iteration) when the blob does not exist.
        A range reaching past the end is cut at the end; one starting at or
        after the end yields nothing.
        """
        ...

    async def delete(self, sha256: str) -> None:
        """Remove the blob; no error if it is already gone."""
        ...

    def list(self) -> AsyncIterator[tuple[str, datetime]]:
        """Yield ``(sha256, last_modified_utc)`` for every blob, for garbage collection."""
        ...

    async def check(self) -> None:
        """Raise BlobStoreUnavailable, saying why, unless the store can take a blob now (for
        `/health`): the bucket answers, or the folder is there and writable."""
        ...

    async def close(self) -> None: ...
