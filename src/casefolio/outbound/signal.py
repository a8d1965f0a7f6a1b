"""Wake long-polls when a change commits: in this process directly, across processes by
PostgreSQL LISTEN/NOTIFY (pg_listen.py) or, on SQLite, a short re-check of the outbox."""

from __future__ import annotations

import asyncio
import contextlib

#: The PostgreSQL channel a committing transaction notifies (recorder.py).
CHANNEL = "casefolio_changes"


class ChangeSignal:
    """Waiters of any event loop in this process; `changed()` wakes them all."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()
        #: How many changes were signalled so far: a worker busy when one came (so not
        #: waiting) sees it moved.
        self.generation = 0

    def changed(self) -> None:
        self.generation += 1
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            # A waiter may belong to another thread's loop (a benchmark's client, say).
            waiter.get_loop().call_soon_threadsafe(_wake, waiter)

    @property
    def waiting(self) -> int:
        """How many waiters there are now."""
        return len(self._waiters)

    async def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for the next change; return whether one came."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, seconds)
                return True
            return False
        finally:
            self._waiters.discard(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


#: One per process: every app, session and worker of the process shares it.
signal = ChangeSignal()
