"""Making blob files durable on a local filesystem: fsync of a file, a directory or a staged
upload, and for a batch one syncfs(2) per step where Linux offers it (parallel fsyncs
elsewhere). Used by storage/local.py, which decides what must be durable when."""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from casefolio.storage.base import SpooledFile
from casefolio.storage.spool import write_all

_T = TypeVar("_T")
#: fsyncs put_many runs at once where syncfs is missing. They mostly wait on the disk, not
#: the CPU, and concurrent fsyncs share journal commits: well above the core count.
_FSYNC_THREADS = 32
_fsync_pool: ThreadPoolExecutor | None = None
_fsync_pool_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    # Created on first use, in the process that uses it (not inherited across a fork).
    global _fsync_pool
    with _fsync_pool_lock:
        if _fsync_pool is None:
            _fsync_pool = ThreadPoolExecutor(_FSYNC_THREADS, "blob-fsync")
        return _fsync_pool


def fsync_dir(path: Path) -> None:
    # A directory fsync makes its entries (a rename target, a new subdirectory)
    # survive a crash; the rename itself is atomic but not durable without it.
    # Never retried: after a failed fsync Linux may have dropped the dirty state,
    # so a second fsync can "succeed" without the data being on disk.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Beside:
    """fsyncs running in the pool's threads while the caller does something else."""

    def __init__(self, futures: list[Future[None]]) -> None:
        self._futures = futures

    def wait(self) -> None:
        """Wait for every one; raise the first error (after all have finished)."""
        errors = [error for future in self._futures if (error := future.exception())]
        if errors:
            raise errors[0]


def fsync_dirs_beside(paths: Iterable[Path]) -> Beside:
    """Start fsyncing the directories in the pool's threads; `wait()` before relying on
    them. Directory fsyncs, unlike writes, may run in any order and at once."""
    return Beside([_pool().submit(fsync_dir, path) for path in paths])


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_held(spooled: SpooledFile, *, sync: bool) -> None:
    """Write a held upload's bytes to its staging name (new: O_EXCL), fsynced if `sync`."""
    if spooled.held is None:
        raise ValueError(f"{spooled.path} is not held in memory")
    fd = os.open(spooled.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        write_all(fd, spooled.held)
        if sync:
            os.fsync(fd)  # see fsync_spooled
    finally:
        os.close(fd)


def fsync_spooled(path: Path, size: int) -> None:
    """Make a staged file's bytes durable, after checking it is the size that was spooled."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size != size:
            raise ValueError(f"{path} does not have the spooled size {size}")
        # The data must be on disk before a name points at it; otherwise a
        # crash after the rename can leave a complete-looking, empty blob.
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    """syncfs(2), where it reports write-back errors (Linux 5.8 and later); else None."""
    if sys.platform != "linux":
        return None
    try:
        major, minor = (int(part) for part in os.uname().release.split(".")[:2])
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (ValueError, OSError, AttributeError):
        return None
    if (major, minor) < (5, 8):
        return None
    syncfs.argtypes = [ctypes.c_int]
    syncfs.restype = ctypes.c_int
    return syncfs


_SYNCFS = _load_syncfs()


class Flusher:
    """Makes a batch of files, then a batch of directories, durable.

    With syncfs(2) each step is one call for the whole filesystem: for a batch of small files
    far faster than parallel fsyncs and far less CPU (their thread hand-offs cost more than
    the fsyncs; bench/README.md). It also flushes whatever else is dirty on that filesystem, which
    a batch can afford and a single upload could not; so `put` keeps its fsyncs. Elsewhere,
    parallel fsyncs. The descriptor is opened before the first step, so a write-back error
    from then on is reported (as is one nobody has seen yet: errseq semantics).
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._fd = -1

    def __enter__(self) -> Self:
        if _SYNCFS is not None:
            self._fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd >= 0:
            os.close(self._fd)

    def files(self, paths: Iterable[Path]) -> dict[Path, Exception]:
        """Flush the files' data; return those that may not be durable, with the cause."""
        return self._flush(paths, fsync_file)

    def directories(self, paths: Iterable[Path]) -> dict[Path, Exception]:
        """Flush the directories' entries (renames, new subdirectories) likewise."""
        return self._flush(paths, fsync_dir)

    def _flush(self, paths: Iterable[Path], fsync: Callable[[Path], None]) -> dict[Path, Exception]:
        if _SYNCFS is None:
            return _run_all(fsync, paths)
        todo = list(paths)
        if todo and _SYNCFS(self._fd) != 0:
            # Not retried, like a failed fsync: the kernel may have dropped the dirty pages.
            code = ctypes.get_errno()
            error = OSError(code, f"syncfs: {os.strerror(code)}")
            return {path: error for path in todo}
        return {}


def _run_all(fn: Callable[[_T], None], items: Iterable[_T]) -> dict[_T, Exception]:
    """Call ``fn`` on every item in parallel threads; return the items that raised."""
    todo = list(dict.fromkeys(items))
    if not todo:
        return {}
    errors: dict[_T, Exception] = {}
    pool = _pool()
    for item, future in [(item, pool.submit(fn, item)) for item in todo]:
        exc = future.exception()
        if exc is not None:
            if not isinstance(exc, Exception):
                raise exc
            errors[item] = exc
    return errors
