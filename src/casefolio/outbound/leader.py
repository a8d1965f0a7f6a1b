"""One in-server worker per data folder: the server processes of an installation on one
machine elect one by a lock file, and the others stand by.

Every process ran a worker of its own, and every commit woke them all: each ran a round (on
PostgreSQL a numbering, a fan-out that waits for the others' advisory lock, a seal), all for
the same outbox, on the same cores the requests need (bench/README.md: ingest with
everything on, 2 server processes). Now the process that holds `worker.lock` runs the
worker (and the trash's housekeeping); the lock goes with its process, however it ends, and
a process standing by takes it within TAKEOVER_SECONDS. `casefolio worker` processes (the
scale-out shape) are not part of the election.

The elected worker still hears of every commit at once: on PostgreSQL by the NOTIFY every
process sends (runtime.py); on SQLite, where there is none, the other processes send it a
datagram on commit (`waker`), else it would see their changes only at its next one-second
re-check.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio

from casefolio.outbound.signal import signal

try:
    import fcntl
except ImportError:  # not POSIX: every process leads, as before the election
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
LOCK_FILE = "worker.lock"
#: How often a process standing by tries to take the lock of a leader that went.
TAKEOVER_SECONDS = 2.0


def wake_address(data_dir: Path) -> str | None:
    """The elected worker's wake-up socket for a data folder: on Linux an abstract name (no
    file to leave behind, no limit on the folder's path length); elsewhere none."""
    if not sys.platform.startswith("linux"):
        return None
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:32]
    return f"\0casefolio-worker-{digest}"


class Waker:
    """Tells the elected worker of this process's data folder that a change committed here
    (SQLite, from a process that does not lead)."""

    def __init__(self, address: str | None = None) -> None:
        #: Where to send; None while this process leads, or where there is nothing to send.
        self.address = address
        self._socket: socket.socket | None = None

    def poke(self) -> None:
        address = self.address
        if address is None:
            return
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.setblocking(False)
        # No leader listening (it is being replaced) or its queue full of pokes already:
        # either way its next round, or its re-check, finds the change.
        with contextlib.suppress(OSError):
            self._socket.sendto(b"!", address)


#: One per process (recorder.py pokes it after a commit that recorded changes).
waker = Waker()


@asynccontextmanager
async def listening(address: str | None) -> AsyncIterator[None]:
    """While open, a datagram sent to `address` wakes this process's worker."""
    if address is None:
        yield
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        sock.bind(address)
    except OSError as exc:
        # The worker runs all the same; other processes' changes reach it at its re-check.
        log.warning("the worker's wake-up socket is unavailable (%s)", exc)
        sock.close()
        yield
        return
    loop = asyncio.get_running_loop()

    def drain() -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while True:
                sock.recv(64)
        signal.changed()

    loop.add_reader(sock.fileno(), drain)
    try:
        yield
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()


@asynccontextmanager
async def elected(
    data_dir: Path,
    run: Callable[[], AbstractAsyncContextManager[object]],
    *,
    sqlite: bool,
    takeover_seconds: float = TAKEOVER_SECONDS,
) -> AsyncIterator[None]:
    """While open, `run()` is entered in this process if it holds the data folder's worker
    lock, or once it gets it (a process standing by). Where the folder cannot hold the lock
    (a read-only one beside PostgreSQL and S3, say), every process runs it, as before."""
    try:
        os.makedirs(data_dir, exist_ok=True)
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        log.warning("no worker election in %s (%s): this process runs its own", data_dir, exc)
        async with run():
            yield
        return
    address = wake_address(data_dir) if sqlite else None
    waker.address = address  # until it leads, its commits tell the leader
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_lead_when_free, fd, address, run, takeover_seconds)
            yield
            tasks.cancel_scope.cancel()
    finally:
        waker.address = None
        os.close(fd)  # and with it the lock


async def _lead_when_free(
    fd: int,
    address: str | None,
    run: Callable[[], AbstractAsyncContextManager[object]],
    takeover_seconds: float,
) -> None:
    # A lock file cannot be awaited: the one standing by tries again now and then.
    while not _lock(fd):  # noqa: ASYNC110
        await anyio.sleep(takeover_seconds)
    waker.address = None  # its own commits wake its worker directly
    log.info("this process (pid %d) runs the webhook worker", os.getpid())
    async with listening(address), run():
        await anyio.sleep_forever()


def _lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
