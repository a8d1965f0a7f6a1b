"""Who owns a staging file: a process's claim, so that its leftovers can be told apart.

A process killed with SIGKILL leaves the files of its uploads in flight in the staging
folder. Several processes may share that folder (uvicorn workers, servers on one machine,
`casefolio import`), so age alone cannot tell a leftover from a live upload. Each process
that stages a file holds an exclusive `flock` on a lock file of its own,
``<staging>.owners/<owner>.lock`` (beside the folder, so the folder holds nothing but
staged files), for as long as it lives, and puts ``<owner>`` in the
name of every file it stages (``upload-<owner>-….part``). The kernel drops the lock when
the process exits, however it exits; so a file whose owner's lock can be taken (or is
gone) belongs to nobody and may be removed, at any age. `sweep` does that at start-up.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

_OWNER_HEX = 12
_OWNED = re.compile(rf"[a-z]+-([0-9a-f]{{{_OWNER_HEX}}})-")


@dataclass(frozen=True)
class _Claim:
    owner: str
    fd: int  # open for the process's lifetime: closing it would release the lock
    pid: int


_claims: dict[Path, _Claim] = {}
_claims_lock = threading.Lock()


def owners_dir(staging_dir: Path) -> Path:
    """The folder of the owners' lock files for `staging_dir`."""
    return staging_dir.with_name(f"{staging_dir.name}.owners")


def _lock_path(staging_dir: Path, owner: str) -> Path:
    return owners_dir(staging_dir) / f"{owner}.lock"


def _new_claim(staging_dir: Path) -> _Claim:
    owners_dir(staging_dir).mkdir(parents=True, exist_ok=True)
    while True:
        owner = secrets.token_hex(_OWNER_HEX // 2)
        path = _lock_path(staging_dir, owner)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # A sweep may take the lock between the create and this flock (it then removes
            # the file), or have removed the file already: both mean start over.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return _Claim(owner, fd, os.getpid())
        except (BlockingIOError, FileNotFoundError):
            pass
        os.close(fd)


def owner(staging_dir: Path) -> str:
    """This process's owner id in `staging_dir`, claiming it on first use (blocking I/O)."""
    key = staging_dir.absolute()
    with _claims_lock:
        claim = _claims.get(key)
        if claim is None or claim.pid != os.getpid():  # a forked child claims its own
            claim = _claims[key] = _new_claim(staging_dir)
        return claim.owner


def release(staging_dir: Path) -> None:
    """Give up this process's claim on `staging_dir` (a store closing), unless files it
    staged are still there: those stay owned until the process exits."""
    key = staging_dir.absolute()
    with _claims_lock:
        claim = _claims.get(key)
        if claim is None or claim.pid != os.getpid():
            return
        prefix = f"-{claim.owner}-"
        try:
            with os.scandir(staging_dir) as entries:
                if any(prefix in entry.name for entry in entries):
                    return
        except FileNotFoundError:
            pass
        del _claims[key]
        _lock_path(staging_dir, claim.owner).unlink(missing_ok=True)
        os.close(claim.fd)


def temp_file(staging_dir: Path, kind: str) -> tuple[int, Path]:
    """A new, empty file staged by this process: its open descriptor and its path."""
    # mkstemp: unique name, O_EXCL, mode 0600 - safe with concurrent uploads.
    fd, name = tempfile.mkstemp(
        dir=staging_dir, prefix=f"{kind}-{owner(staging_dir)}-", suffix=".part"
    )
    return fd, Path(name)


def temp_name(staging_dir: Path, kind: str) -> Path:
    """A free name for a file this process may stage later (nothing is created now)."""
    return staging_dir / f"{kind}-{owner(staging_dir)}-{secrets.token_hex(8)}.part"


def owner_of(name: str) -> str | None:
    """The owner id in a staged file's name, or None for a name without one."""
    found = _OWNED.match(name)
    return found.group(1) if found else None


def is_owned(staging_dir: Path, name: str) -> bool:
    """Whether the staged file `name` belongs to a process that is still running."""
    owner_id = owner_of(name)
    if owner_id is None:
        return False
    return _alive(staging_dir, owner_id, take=False) is not None


def _alive(staging_dir: Path, owner_id: str, *, take: bool) -> int | None:
    """None if `owner_id`'s process is gone. Else -1 if it is running; or, with `take`, the
    descriptor of its lock file, now locked by us, when it is gone but its lock file is not."""
    path = _lock_path(staging_dir, owner_id)
    with _claims_lock:
        mine = _claims.get(staging_dir.absolute())
    if mine is not None and mine.owner == owner_id and mine.pid == os.getpid():
        return -1
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return -1
    if take:
        return fd
    os.close(fd)
    return None


def sweep(staging_dir: Path) -> list[str]:
    """Remove the staged files of processes that are gone, and their lock files.

    Safe while other processes use the folder: a running process's files are never
    touched (its lock cannot be taken), and a file without an owner id in its name is
    left to `casefolio gc` and its grace period. Returns the names of the files removed.
    """
    staged: dict[str, list[str]] = {}
    try:
        with os.scandir(staging_dir) as entries:
            for entry in entries:
                found = owner_of(entry.name)
                if found is not None and entry.is_file(follow_symlinks=False):
                    staged.setdefault(found, []).append(entry.name)
    except FileNotFoundError:
        return []
    try:
        lock_files = os.listdir(owners_dir(staging_dir))
    except FileNotFoundError:
        lock_files = []
    owners = set(staged) | {
        name.removesuffix(".lock") for name in lock_files if name.endswith(".lock")
    }
    removed: list[str] = []
    for owner_id in sorted(owners):
        fd = _alive(staging_dir, owner_id, take=True)
        if fd == -1:
            continue
        try:
            # Its files go first, its lock file last: while the lock file is there, a
            # sweep that fails halfway is finished by the next one.
            for name in sorted(staged.get(owner_id, [])):
                try:
                    os.unlink(staging_dir / name)
                    removed.append(name)
                except FileNotFoundError:
                    pass  # another sweep was quicker
            if fd is not None:
                _lock_path(staging_dir, owner_id).unlink(missing_ok=True)
        finally:
            if fd is not None:
                os.close(fd)
    return removed
