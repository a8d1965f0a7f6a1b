"""Blobs as files in a local folder: ``root/ab/cd/<sha256>``, staged in ``root/tmp``."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import AsyncIterator, Sequence
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
    SpooledFile,
    check_range,
    check_sha256,
)

_HEX = frozenset("0123456789abcdef")


def _is_fanout(name: str) -> bool:
    return len(name) == 2 and set(name) <= _HEX


class LocalBlobStore:
    """Content-addressed blobs in ``root``; ``put`` is fsync + rename + directory fsync."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging_dir = root / "tmp"
        # Staging lives under root so it shares the blobs' filesystem: put is a rename.
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        # Fan-out directories a put made whose parents' fsyncs are still running.
        self._fresh: dict[Path, durable.Beside] = {}
        self._fresh_lock = threading.Lock()

    def _path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

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
            with self._fresh_lock:
                created = self._place(src, spooled)
                # Each directory made here is a new entry in its parent, lost in a crash
                # without the parent's fsync. Those fsyncs run while the blob's directory's
                # does, not one after the other: in a young store most uploads make one, and
                # these waits in a row were an upload's longest.
                parents = durable.fsync_dirs_beside(d.parent for d in reversed(created))
                # A directory another put of this process made may not be durable yet: this
                # blob is durable only once it is.
                earlier = [self._fresh[d] for d in (leaf.parent, leaf) if d in self._fresh]
                self._fresh.update((d, parents) for d in created)
            try:
                # fsync the blob's directory even when the blob already existed: an
                # earlier put may have renamed it and then failed its directory fsync.
                durable.fsync_dir(leaf)
            finally:
                try:
                    parents.wait()
                finally:
                    with self._fresh_lock:
                        for directory in created:
                            if self._fresh.get(directory) is parents:
                                del self._fresh[directory]
            for other in earlier:
                other.wait()
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
                created: list[Path] = []
                for src, item in list(staged.items()):
                    try:
                        created.extend(self._place(src, item))
                    except Exception as exc:
                        errors[staged.pop(src).sha256] = exc
                # 3. The names made durable: each blob's directory (even when the blob
                #    existed: an earlier put may have renamed it and then failed its
                #    directory fsync), and the parent of every directory this batch made.
                made = set(created)
                needs: dict[str, set[Path]] = {}  # sha256 -> directories to make durable
                for item in staged.values():
                    leaf = self._path(item.sha256).parent
                    dirs = needs.setdefault(item.sha256, {leaf})
                    dirs.update(d.parent for d in (leaf.parent, leaf) if d in made)
                failed = flush.directories(set().union(*needs.values()))
                for sha, dirs in needs.items():
                    bad = next((failed[d] for d in dirs if d in failed), None)
                    if bad is not None and sha not in errors:
                        errors[sha] = bad
        finally:
            # Every spooled file is consumed on success and on failure alike (a
            # renamed one is gone already; the others go now).
            for path in [item.path for item in batch] + adopted:
                path.unlink(missing_ok=True)
        if errors:
            raise BlobsNotStored(errors)

    def _place(self, src: Path, item: SpooledFile) -> list[Path]:
        """Rename one fsynced file into place; return the directories this created."""
        target = self._path(item.sha256)
        try:
            # Same bytes already stored: keep them, but refresh the mtime so gc's grace
            # period covers the row about to be committed. The new mtime need not be
            # durable: after a crash that upload is gone anyway.
            os.utime(target)
            return []
        except FileNotFoundError:
            pass
        try:
            os.replace(src, target)  # atomic on POSIX: readers see all or nothing
            return []
        except FileNotFoundError:
            # Tried before making the fan-out directories: after the first uploads they
            # exist, and each mkdir would be a system call for nothing.
            if not src.exists():
                raise
        created = self._make_dirs(target.parent)
        os.replace(src, target)
        return created

    def _adopt(self, src: Path) -> Path:
        # A file spooled elsewhere (another filesystem) cannot be renamed into
        # place; copy it into staging first. The usual path is a no-op.
        if src.parent == self.staging_dir or os.path.samefile(src.parent, self.staging_dir):
            return src
        fd, name = staging.temp_file(self.staging_dir, "adopt")
        os.close(fd)
        shutil.copyfile(src, name)
        return name

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

    async def modified(self, sha256: str) -> datetime | None:
        return await anyio.to_thread.run_sync(_modified, self._path(sha256))

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
        await anyio.to_thread.run_sync(staging.release, self.staging_dir)


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
