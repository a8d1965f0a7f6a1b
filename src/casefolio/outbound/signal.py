"""Wake long-polls when a change commits: in this process directly, across processes by
PostgreSQL LISTEN/NOTIFY (runtime.py) or, on SQLite, a short re-check of the outbox."""

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


class Outgoing:
    """Commits of this process that other processes are still to hear of (PostgreSQL).

    While a notifier runs (runtime.py, on the LISTEN connection) a commit only marks itself
    here, and the notifier sends one NOTIFY for all the commits marked since its last, off
    the committing request's path. Without one (the CLI) the committer notifies itself.
    """

    def __init__(self) -> None:
        self._notifier: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    def attach(self, pending: asyncio.Event) -> None:
        """From the notifier's task: mark commits on `pending` from now on."""
        self._notifier = (asyncio.get_running_loop(), pending)

    def detach(self, pending: asyncio.Event) -> None:
        if self._notifier is not None and self._notifier[1] is pending:
            self._notifier = None

    @property
    def active(self) -> bool:
        """Whether a notifier runs in this process."""
        return self._notifier is not None

    def committed(self) -> bool:
        """Mark a commit; return False if no notifier runs (the caller notifies)."""
        notifier = self._notifier
        if notifier is None or notifier[0].is_closed():
            return False
        loop, pending = notifier
        try:
            here = asyncio.get_running_loop() is loop
        except RuntimeError:
            here = False
        if here:
            pending.set()
        else:  # a commit made on another thread's loop (a benchmark's client, say)
            loop.call_soon_threadsafe(pending.set)
        return True


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


#: One per process: every app, session and worker of the process shares it.
signal = ChangeSignal()
outgoing = Outgoing()
