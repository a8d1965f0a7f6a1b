"""The files of a directory tree being imported: found by one walk, then staged (copied into
the blob store's staging folder while hashed) in chunks, one thread call per chunk."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from casefolio.domain.transfer import FileEvent, describe
from casefolio.storage import staging
from casefolio.storage.base import SpooledFile

#: Files a worker stages in one thread call (fewer if they add up to STAGE_CHUNK_BYTES).
STAGE_CHUNK = 32
STAGE_CHUNK_BYTES = 8 * 1024 * 1024
_CHUNK = 1024 * 1024
_NOT_FOLLOWED = "a link to a directory; not followed"
_OUTSIDE = "a link to a file outside the directory being imported; not followed"


class FileProblem(Exception):
    """A file that cannot be imported as it is (too large)."""


@dataclass(frozen=True)
class Source:
    path: Path
    relative: PurePosixPath
    size: int


@dataclass(frozen=True)
class Scan:
    directories: list[PurePosixPath]  # parents before children
    files: list[Source]
    problems: list[FileEvent]


def scan_tree(root: Path) -> Scan:
    """Walk `root`; files in a stable, sorted order.

    A symbolic link to a file in the tree is imported as that file; links that lead out of
    the tree, or to a directory, are reported and not followed: an import reads the tree it
    was given, nothing beside it, and a walk through directory links can loop.
    """
    real_root = root.resolve()
    directories: list[PurePosixPath] = []
    files: list[Source] = []
    problems: list[FileEvent] = []

    def fail(relative: PurePosixPath, message: str) -> None:
        problems.append(FileEvent(relative.as_posix(), "failed", message=message, planned=False))

    def unreadable(error: OSError) -> None:
        fail(PurePosixPath(os.path.relpath(error.filename or root, root)), describe(error))

    for current, dirnames, filenames in os.walk(root, onerror=unreadable):
        base = PurePosixPath(os.path.relpath(current, root))
        if current != str(root):
            directories.append(base)
        for name in sorted(dirnames):
            if os.path.islink(os.path.join(current, name)):
                fail(base / name, _NOT_FOLLOWED)
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(current) / name
            relative = base / name
            try:
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    path = path.resolve(strict=True)
                    if not path.is_relative_to(real_root):
                        fail(relative, _OUTSIDE)
                        continue
                    info = path.stat()
            except OSError as exc:
                fail(relative, describe(exc))
                continue
            except RuntimeError:  # Python 3.11's answer to a loop of links
                fail(relative, "a loop of links")
                continue
            if not stat.S_ISREG(info.st_mode):
                fail(relative, "not a file")
                continue
            files.append(Source(path, relative, info.st_size))
    return Scan(directories, files, problems)


def _stage(source: Source, staging_dir: Path, max_bytes: int) -> SpooledFile:
    """Copy `source` into staging while hashing it."""
    # O_NOFOLLOW: a file that became a link since the scan is not read through it.
    with open(os.open(source.path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as src:
        size = os.fstat(src.fileno()).st_size
        if size > max_bytes:
            raise FileProblem(f"larger than the maximum of {max_bytes} bytes")
        fd, name = staging.temp_file(staging_dir, "import")
        digest = hashlib.sha256()
        written = 0
        try:
            with os.fdopen(fd, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise FileProblem(f"larger than the maximum of {max_bytes} bytes")
                    digest.update(chunk)
                    dst.write(chunk)
                # No fsync here: a skipped file is simply unlinked, and `put`/`put_many`
                # make a stored one durable (its only fsync, or an upload for S3).
        except BaseException:
            os.unlink(name)
            raise
    return SpooledFile(Path(name), digest.hexdigest(), written)


def stage_all(
    sources: list[Source], staging_dir: Path, max_bytes: int
) -> list[SpooledFile | Exception]:
    """`_stage` each source; a file's problem is returned in its place, not raised."""
    results: list[SpooledFile | Exception] = []
    try:
        for source in sources:
            try:
                results.append(_stage(source, staging_dir, max_bytes))
            except (OSError, FileProblem) as exc:
                results.append(exc)
    except BaseException:
        unlink_all([r.path for r in results if isinstance(r, SpooledFile)])
        raise
    return results


def chunks(files: list[Source]) -> Iterator[list[Source]]:
    """Group files for the workers: up to STAGE_CHUNK files or STAGE_CHUNK_BYTES each."""
    chunk: list[Source] = []
    size = 0
    for source in files:
        if chunk and (len(chunk) >= STAGE_CHUNK or size + source.size > STAGE_CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(source)
        size += source.size
    if chunk:
        yield chunk


def unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
