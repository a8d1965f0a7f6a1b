"""Blobs as files in a local folder: ``root/ab/cd/<sha256>``, staged in ``root/tmp``."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread

from casefolio.fastpath import inflight
from casefolio.storage import durable, staging
from casefolio.storage.base import (
    READ_CHUNK_BYTES,
    BlobMissing,
    BlobsNotStored,
    BlobStoreUnavailable,
    SpooledFile,
    StagingStore,
    blob_key,
    check_range,
    check_sha256,
    unlink,
)

_HEX = frozenset("0123456789abcdef")


def _is_fanout(name: str) -> bool:
    return len(name) == 2 and set(name) <= _HEX


class LocalBlobStore(StagingStore):
    """Content-addressed blobs in ``root``; ``put`` is fsync + rename + directory fsync."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Staging lives under root so it shares the blobs' filesystem: put is a rename.
        super().__init__(root / "tmp")
        # Fan-out directories whose entries this process has seen made durable (their
        # parent fsynced after they existed). Any other, even one that exists, may have
        # been made by another process or put whose parent's fsync has not finished: a
        # put into it fsyncs its parents too (beside its own, so at once), then trusts it.
        self._durable_dirs: set[Path] = set()

    def _path(self, sha256: str) -> Path:
        return self.root / blob_key(sha256)

    async def check(self) -> None:
        # Before the first upload the folder may not exist yet: then its parent must take it.
        where = self.root if self.root.exists() else self.root.parent
        if not (where.is_dir() and os.access(where, os.W_OK | os.X_OK)):
            raise BlobStoreUnavailable(f"{where} is not a folder casefolio can write to")

    def local_path(self, sha256: str) -> Path | None:
        return self._path(sha256)

    async def put(self, spooled: SpooledFile) -> None:
        # One call for the whole sequence, in a worker thread (or on the loop for a request
        # that is alone: fastpath/inflight.py): it cannot be abandoned halfway by a
        # cancellation, and it cleans up after itself.
        await inflight.run_blocking(partial(self._put_sync, spooled))

    def _put_sync(self, spooled: SpooledFile) -> None:
        src = spooled.path
        try:
            leaf = self._path(spooled.sha256).parent
            if spooled.held is None:
                src = self._adopt(src)
                durable.fsync_spooled(src, spooled.size)
            else:
                durable.write_held(spooled, sync=True)
            self._place(src, spooled)
            unsure = [d for d in (leaf.parent, leaf) if d not in self._durable_dirs]
            # Their parents' fsyncs run while the blob's directory's does, not one after
            # the other: in a young store most uploads make a directory, and these waits
            # in a row were an upload's longest.
            parents = durable.fsync_dirs_beside(d.parent for d in unsure)
            try:
                # fsync the blob's directory even when the blob already existed: an
                # earlier put may have renamed it and then failed its directory fsync.
                durable.fsync_dir(leaf)
            finally:
                parents.wait()
            self._durable_dirs.update(unsure)
        finally:
            # The spooled file is consumed on success and on failure alike.
            for path in {src, spooled.path}:
                path.unlink(missing_ok=True)

    async def put_many(self, spooled: Sequence[SpooledFile]) -> None:
        # One worker-thread call, like put: never abandoned halfway, always cleans up.
        await anyio.to_thread.run_sync(self._put_many_sync, list(spooled))

    def _put_many_sync(self, batch: list[SpooledFile]) -> None:
        errors: dict[str, BaseException] = {}
        staged: dict[Path, SpooledFile] = {}  # the file to rename -> its upload
        adopted: list[Path] = []
        try:
            for item in batch:
                try:
                    self._path(item.sha256)
                    if item.held is not None:
                        durable.write_held(item, sync=False)  # flushed with the rest below
                        staged[item.path] = item
                        continue
                    src = self._adopt(item.path)
                    if src != item.path:
                        adopted.append(src)
                    if src.stat().st_size != item.size:
                        raise ValueError(f"{src} does not have the spooled size {item.size}")
                    staged[src] = item
                except Exception as exc:
                    errors[item.sha256] = exc
            with durable.Flusher(self.root) as flush:
                # 1. Every file's data on disk before a name points at it (a crash after a
                #    rename must not leave a complete-looking, empty blob).
                for src, error in flush.files(staged).items():
                    errors[staged.pop(src).sha256] = error
                # 2. Names: rename into place, or refresh an existing blob's mtime.
                for src, item in list(staged.items()):
                    try:
                        self._place(src, item)
                    except Exception as exc:
                        errors[staged.pop(src).sha256] = exc
                # 3. The names made durable: each blob's directory (even when the blob
                #    existed: an earlier put may have renamed it and then failed its
                #    directory fsync), and the parent of every directory not yet known
                #    durable (as in _put_sync).
                needs: dict[str, set[Path]] = {}  # sha256 -> directories to make durable
                unsure: set[Path] = set()
                for item in staged.values():
                    leaf = self._path(item.sha256).parent
                    dirs = needs.setdefault(item.sha256, {leaf})
                    for d in (leaf.parent, leaf):
                        if d not in self._durable_dirs:
                            dirs.add(d.parent)
                            unsure.add(d)
                failed = flush.directories(set().union(*needs.values()))
                for sha, dirs in needs.items():
                    bad = next((failed[d] for d in dirs if d in failed), None)
                    if bad is not None and sha not in errors:
                        errors[sha] = bad
                self._durable_dirs.update(d for d in unsure if d.parent not in failed)
        finally:
            # Every spooled file is consumed on success and on failure alike (a
            # renamed one is gone already; the others go now).
            for path in [item.path for item in batch] + adopted:
                path.unlink(missing_ok=True)
        if errors:
            raise BlobsNotStored(errors)

    def _place(self, src: Path, item: SpooledFile) -> None:
        """Rename one fsynced file into place, making its fan-out directories if need be."""
        target = self._path(item.sha256)
        try:
            # Same bytes already stored: keep them, but refresh the mtime so gc's grace
            # period covers the row about to be committed. The new mtime need not be
            # durable: after a crash that upload is gone anyway.
            os.utime(target)
            return
        except FileNotFoundError:
            pass
        try:
            os.replace(src, target)  # atomic on POSIX: readers see all or nothing
            return
        except FileNotFoundError:
            # Tried before making the fan-out directories: after the first uploads they
            # exist, and each mkdir would be a system call for nothing.
            if not src.exists():
                raise
        for directory in (target.parent.parent, target.parent):
            # Another upload (or an earlier one) may have made it.
            directory.mkdir(exist_ok=True)
        os.replace(src, target)

    def _adopt(self, src: Path) -> Path:
        # A file spooled elsewhere (another filesystem) cannot be renamed into
        # place; copy it into staging first. The usual path is a no-op.
        if src.parent == self.staging_dir or os.path.samefile(src.parent, self.staging_dir):
            return src
        fd, name = staging.temp_file(self.staging_dir, "adopt")
        os.close(fd)
        shutil.copyfile(src, name)
        return name

    async def exists(self, sha256: str) -> bool:
        return await anyio.to_thread.run_sync(self._path(sha256).is_file)

    async def modified(self, sha256: str) -> datetime | None:
        return await anyio.to_thread.run_sync(_modified, self._path(sha256))

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
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
        await anyio.to_thread.run_sync(unlink, self._path(sha256))

    async def list(self) -> AsyncIterator[tuple[str, datetime]]:
        # One directory per thread call: memory stays bounded by the largest
        # fan-out directory, not by the number of blobs.
        for first in await anyio.to_thread.run_sync(_subdirs, self.root):
            for second in await anyio.to_thread.run_sync(_subdirs, first):
                for item in await anyio.to_thread.run_sync(_blobs_in, second):
                    yield item


def _modified(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except FileNotFoundError:
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
