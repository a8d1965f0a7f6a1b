"""Concurrent reads of one statement answered by one round trip (PostgreSQL's StatementReader).

The reads themselves are declared in plain SQLAlchemy, as BatchedReads (db/reads.py).

On PostgreSQL a document read is a round trip, and its CPU on the server's side (SQLAlchemy's
execution, asyncpg's protocol, the send that wakes the backend) is a large share of a GET's
(bench/README.md). A worker serving many clients has several such reads in flight at once, each
paying all of it. A Batcher sends the first read of a statement alone; reads of the same
statement that arrive while it is out wait, and go together as one statement (`many`) when it
returns, and so on. At low load nothing changes (every batch holds one read); under load a
round trip serves as many reads as arrived during the previous one.

Freshness is a single read's: a read never joins a statement already sent, so the statement
that answers it leaves after it arrived and sees every commit that completed before then.

The pattern itself, one run out and the arrivals meanwhile together in the next, is the
Coalescer; SQLite's commits share their log flushes with it too (walsync.WalSync).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

from sqlalchemy import Executable

from casefolio.db.reads import BatchedRead, Rows

Run = Callable[[Executable, Mapping[str, Any]], Awaitable[Rows]]

T = TypeVar("T")
R = TypeVar("R")

#: Reads one statement answers at most; more wait for the next. Bounds a batch's latency.
MAX_BATCH = 256


class Coalescer(Generic[T, R]):
    """Runs `run` on its callers' arguments, one run in flight at a time.

    The first caller's argument goes alone and at once, in the caller's own task; arguments
    arriving while a run is out wait, and go together (at most `max_batch`) in the next run,
    which starts when that one ends. So no argument joins a run already started: the run
    that answers a caller starts after the caller arrived. `run` returns one result per
    argument, in their order; if it raises, each of its callers raises that.
    """

    def __init__(
        self, run: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_batch: int | None = None
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._loop: asyncio.AbstractEventLoop | None = None  # whose runs the state below is
        self._busy = False  # a run is out
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, argument: T) -> R:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A run left out on another loop (one closed without asyncio.run's clean-up,
            # which settles it) would never end on this one, nor answer who waits for it.
            self._loop, self._busy, self._waiting = loop, False, []
        if self._busy:
            future: asyncio.Future[R] = loop.create_future()
            self._waiting.append((argument, future))
            return await future
        # Nothing out: this argument goes at once, and alone.
        self._busy = True
        try:
            [result] = await self._run([argument])
            return result
        finally:
            self._send_next()

    def _send_next(self) -> None:
        waiting = self._waiting
        if not waiting:
            self._busy = False
            return
        cut = len(waiting) if self._max_batch is None else self._max_batch
        batch, self._waiting = waiting[:cut], waiting[cut:]
        # A task, not the caller that finished: its request must not wait for others' work.
        task = asyncio.get_running_loop().create_task(self._answer(batch))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        # Settled in a callback, which runs however the task ends: even cancelled before its
        # first step, no caller is left waiting and the next run goes.
        task.add_done_callback(lambda done: self._settle(batch, done))

    async def _answer(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        # A caller that went away (its request cancelled) needs no answer.
        batch = [(argument, future) for argument, future in batch if not future.done()]
        if not batch:
            return
        results = await self._run([argument for argument, _ in batch])
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _settle(self, batch: list[tuple[T, asyncio.Future[R]]], task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        for _, future in batch:
            if future.done():
                continue
            if error is None:
                future.cancel()  # the task was cancelled (shutdown): so are its callers
            else:
                # Each caller raises it: a database gone away is a 503 for every one of them.
                future.set_exception(error)
        self._send_next()


class Batcher:
    """Runs BatchedReads through `run`, one statement of each in flight at a time."""

    def __init__(self, run: Run, *, max_batch: int = MAX_BATCH) -> None:
        self._run = run
        self._max_batch = max_batch
        self._reads: dict[BatchedRead, Coalescer[Mapping[str, Any], Rows]] = {}

    async def execute(self, read: BatchedRead, parameters: Mapping[str, Any]) -> Rows:
        """Given a read and its keys' values, return its rows, as `read.single` would."""
        if parameters.keys() != read.keys:
            raise ValueError(f"a batched read takes exactly {sorted(read.keys)}")
        coalescer = self._reads.get(read)
        if coalescer is None:
            bound = self._max_batch if read.max_batch is None else read.max_batch
            coalescer = self._reads[read] = Coalescer(partial(self._read, read), max_batch=bound)
        return await coalescer(parameters)

    async def _read(self, read: BatchedRead, batch: list[Mapping[str, Any]]) -> Sequence[Rows]:
        if len(batch) == 1:
            return [await self._run(read.single, batch[0])]
        arrays = {key: [parameters[key] for parameters in batch] for key in read.keys}
        answers: list[list[Sequence[Any]]] = [[] for _ in batch]
        for row in await self._run(read.many, arrays):
            answers[row[-1] - 1].append(row[:-1])
        return answers
