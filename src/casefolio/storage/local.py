"""Blobs as files in a local folder: ``root/ab/cd/<sha256>``, staged in ``root/tmp``."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread

from casefolio.storage.base import (
    READ_CHUNK_BYTES,
    BlobMissing,
    SpooledFile,
    check_range,
    check_sha256,
)

_HEX = frozenset("0123456789abcdef")


def _fsync_dir(path: Path) -> None:
    # A directory fsync makes its entries (a rename target, a new subdirectory)
    # survive a crash; the rename itself is atomic but not durable without it.
    # Never retried: after a failed fsync Linux may have dropped the dirty state,
    # so a second fsync can "succeed" without the data being on disk.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_fanout(name: str) -> bool:
    return len(name) == 2 and set(name) <= _HEX


class LocalBlobStore:
    """Content-addressed blobs in ``root``; ``put`` is fsync + rename + directory fsync."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging_dir = root / "tmp"
        # Staging lives under root so it shares the blobs' filesystem: put is a rename.
        self.staging_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def local_path(self, sha256: str) -> Path | None:
        return self._path(sha256)

    async def put(self, spooled: SpooledFile) -> None:
        # One worker-thread call for the whole sequence: it cannot be abandoned
        # halfway by a cancellation, and it cleans up after itself.
        await anyio.to_thread.run_sync(self._put_sync, spooled)

    def _put_sync(self, spooled: SpooledFile) -> None:
        src = spooled.path
        try:
            target = self._path(spooled.sha256)
            src = self._adopt(src)
            fd = os.open(src, os.O_RDONLY)
            try:
                if os.fstat(fd).st_size != spooled.size:
                    raise ValueError(f"{src} does not have the spooled size {spooled.size}")
                # The data must be on disk before a name points at it; otherwise a
                # crash after the rename can leave a complete-looking, empty blob.
                # (Cheap when the spooler already fsynced it.)
                os.fsync(fd)
            finally:
                os.close(fd)
            created = self._make_dirs(target.parent)
            try:
                # Same bytes already stored: keep them, but refresh the mtime so
                # gc's grace period covers the row about to be committed. The new
                # mtime need not be durable: after a crash that upload is gone anyway.
                os.utime(target)
            except FileNotFoundError:
                os.replace(src, target)  # atomic on POSIX: readers see all or nothing
            # fsync the blob's directory even when the blob already existed: an
            # earlier put may have renamed it and then failed its directory fsync.
            _fsync_dir(target.parent)
            # Newly created fan-out directories are themselves new entries in their
            # parents; without these fsyncs a crash could lose the whole subtree.
            for directory in reversed(created):
                _fsync_dir(directory.parent)
        finally:
            # The spooled file is consumed on success and on failure alike.
            src.unlink(missing_ok=True)
            spooled.path.unlink(missing_ok=True)

    def _adopt(self, src: Path) -> Path:
        # A file spooled elsewhere (another filesystem) cannot be renamed into
        # place; copy it into staging first. The usual path is a no-op.
        if os.path.samefile(src.parent, self.staging_dir):
            return src
        fd, name = tempfile.mkstemp(dir=self.staging_dir, prefix="adopt-", suffix=".part")
        os.close(fd)
        shutil.copyfile(src, name)
        return Path(name)

    def _make_dirs(self, leaf: Path) -> list[Path]:
        """Create the fan-out directories down to ``leaf``; return those this call created."""
        created: list[Path] = []
        for directory in (leaf.parent, leaf):
            try:
                directory.mkdir()
                created.append(directory)
            except FileExistsError:
                pass  # another upload (or an earlier one) made it
        return created

    async def exists(self, sha256: str) -> bool:
        return await anyio.to_thread.run_sync(self._path(sha256).is_file)

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self._path(sha256)
        check_range(start, end)
        try:
            f = await anyio.open_file(path, "rb")
        except FileNotFoundError as exc:
            raise BlobMissing(sha256) from exc
        async with f:
            if start:
                await f.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                want = READ_CHUNK_BYTES if remaining is None else min(READ_CHUNK_BYTES, remaining)
                data = await f.read(want)
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

    async def delete(self, sha256: str) -> None:
        # No directory fsync: if a crash resurrects the file it is an orphan,
        # which gc removes again. Empty fan-out directories stay, because
        # removing them would race with a concurrent put renaming into them.
        await anyio.to_thread.run_sync(self._unlink, self._path(sha256))

    @staticmethod
    def _unlink(path: Path) -> None:
        path.unlink(missing_ok=True)

    async def list(self) -> AsyncIterator[tuple[str, datetime]]:
        # One directory per thread call: memory stays bounded by the largest
        # fan-out directory, not by the number of blobs.
        for first in await anyio.to_thread.run_sync(_subdirs, self.root):
            for second in await anyio.to_thread.run_sync(_subdirs, first):
                for item in await anyio.to_thread.run_sync(_blobs_in, second):
                    yield item

    async def close(self) -> None:
        return None


def _subdirs(path: Path) -> list[Path]:
    with os.scandir(path) as entries:
        return sorted(
            Path(e.path) for e in entries if _is_fanout(e.name) and e.is_dir(follow_symlinks=False)
        )


def _blobs_in(directory: Path) -> list[tuple[str, datetime]]:
    prefix = directory.parent.name + directory.name
    found: list[tuple[str, datetime]] = []
    with os.scandir(directory) as entries:
        for e in entries:
            if not e.name.startswith(prefix) or not e.is_file(follow_symlinks=False):
                continue
            try:
                check_sha256(e.name)
                mtime = e.stat(follow_symlinks=False).st_mtime
            except (ValueError, FileNotFoundError):
                continue  # not a blob, or deleted meanwhile
            found.append((e.name, datetime.fromtimestamp(mtime, tz=UTC)))
    found.sort()
    return found
