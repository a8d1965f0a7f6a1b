"""The SQLite log's fsync after a commit, shared by the commits that finish while one is out
(group commit); see sqlite_inline.py for why commits run with `synchronous=NORMAL` and flush
here."""

from __future__ import annotations

import os

import anyio.to_thread

from casefolio.fastpath import inflight
from casefolio.fastpath.batching import Coalescer


class WalSync:
    """Makes committed transactions durable: fsync of the database's write-ahead log.

    One per database and process. fsync works on the file, not the descriptor, so it
    flushes every transaction written to the log so far, whichever connection wrote it.
    A log SQLite has just created is a new directory entry too, which needs its own
    fsync (SQLite's FULL mode does the same).
    """

    def __init__(self, database_path: str) -> None:
        self._wal = database_path + "-wal"
        self._directory = os.path.dirname(os.path.abspath(database_path))
        self._synced_inode: int | None = None
        self.syncs = 0  # how many flushes ran; tests read it
        # A flush already out may have started before a commit's write: that commit waits
        # for the next one, which serves every commit that finished meanwhile.
        self._flushes: Coalescer[None, None] = Coalescer(self._flush_for)

    async def flush(self) -> None:
        """Return once every transaction committed before this call is on disk."""
        if inflight.alone():
            # No other request to share a flush with or to keep the loop for: the fsync on
            # the loop, without the two thread hand-offs (fastpath/inflight.py).
            self.sync()
            return
        await self._flushes(None)

    async def _flush_for(self, commits: list[None]) -> list[None]:
        await anyio.to_thread.run_sync(self.sync)
        return commits

    def sync(self) -> None:
        """Block until everything in the log is on disk (run it in a worker thread)."""
        try:
            fd = os.open(self._wal, os.O_RDONLY)
        except FileNotFoundError:
            return  # checkpointed and removed: the database file holds it, synced by SQLite
        try:
            os.fsync(fd)
            inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        if inode != self._synced_inode:
            directory = os.open(self._directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
            self._synced_inode = inode
        self.syncs += 1
