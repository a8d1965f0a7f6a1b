"""Concurrent reads of one statement answered by one round trip (PostgreSQL's StatementReader).

On PostgreSQL a document read is a round trip, and its CPU on the server's side (SQLAlchemy's
execution, asyncpg's protocol, the send that wakes the backend) was about half of a GET's:
~200 of ~430 µs. A worker serving many clients has several such reads in flight at once, each
paying all of it. A Batcher sends the first read of a statement alone; reads of the same
statement that arrive while it is out wait, and go together as one statement (`many`) when it
returns, and so on. At low load nothing changes (every batch holds one read); under load a
round trip serves as many reads as arrived during the previous one.

Freshness is a single read's: a read never joins a statement already sent, so the statement
that answers it leaves after it arrived and sees every commit that completed before then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ARRAY, Executable, Select, bindparam, cast, column, func
from sqlalchemy.sql.expression import TableValuedAlias
from sqlalchemy.types import TypeEngine

#: What a single-statement read returns: its rows, as SQLAlchemy's Rows or plain tuples.
Rows = Sequence[Sequence[Any]]
Run = Callable[[Executable, Mapping[str, Any]], Awaitable[Rows]]

#: Reads one statement answers at most; more wait for the next. Bounds a batch's latency.
MAX_BATCH = 256
#: The column of `BatchedRead.many` that says whose row it is (WITH ORDINALITY's, 1-based).
POSITION = "position"


def key_table(**keys: TypeEngine[Any]) -> TableValuedAlias:
    """The keys of a batch as a table to join a read to: a column per key (each sent as one
    array parameter of the key's name) and `position`, the key's 1-based place in the batch."""
    # Cast: unnest() takes any array, so PostgreSQL cannot infer the parameters' types.
    arrays = [cast(bindparam(name, type_=ARRAY(kind)), ARRAY(kind)) for name, kind in keys.items()]
    columns = [column(name, kind) for name, kind in keys.items()]
    return (
        func.unnest(*arrays)
        .table_valued(*columns, with_ordinality=POSITION)
        .render_derived(name="batch_keys")
    )


@dataclass(frozen=True, eq=False)
class BatchedRead:
    """One read, as a statement for one set of `keys` (`single`, bind parameters of the keys'
    names) and for many (`many`: the same columns followed by the key's position, in the order
    of the positions, each key's rows in `single`'s order; parameters are arrays, key_table)."""

    single: Select[Any]
    many: Select[Any]
    keys: frozenset[str]


Waiting = list[tuple[Mapping[str, Any], "asyncio.Future[Rows]"]]


@dataclass
class _Queue:
    busy: bool = False  # a statement of this read is out
    waiting: Waiting = field(default_factory=list)


class Batcher:
    """Runs BatchedReads through `run`, one statement of each in flight at a time."""

    def __init__(self, run: Run, *, max_batch: int = MAX_BATCH) -> None:
        self._run = run
        self._max_batch = max_batch
        self._queues: dict[BatchedRead, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def execute(self, read: BatchedRead, parameters: Mapping[str, Any]) -> Rows:
        """Given a read and its keys' values, return its rows, as `read.single` would."""
        if parameters.keys() != read.keys:
            raise ValueError(f"a batched read takes exactly {sorted(read.keys)}")
        queue = self._queues.get(read)
        if queue is None:
            queue = self._queues[read] = _Queue()
        if queue.busy:
            future: asyncio.Future[Rows] = asyncio.get_running_loop().create_future()
            queue.waiting.append((parameters, future))
            return await future
        # Nothing out: this read goes at once, and alone.
        queue.busy = True
        try:
            return await self._run(read.single, parameters)
        finally:
            self._send_next(read, queue)

    def _send_next(self, read: BatchedRead, queue: _Queue) -> None:
        waiting = queue.waiting
        if not waiting:
            queue.busy = False
            return
        queue.waiting = waiting[self._max_batch :]
        batch = waiting[: self._max_batch]
        # A task, not the caller that finished: its request must not wait for others' reads.
        task = asyncio.get_running_loop().create_task(self._answer(read, batch))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        # Settled in a callback, which runs however the task ends: even cancelled before its
        # first step, no caller is left waiting and the queue moves on.
        task.add_done_callback(lambda done: self._settle(read, queue, batch, done))

    async def _answer(self, read: BatchedRead, batch: Waiting) -> None:
        # A caller that went away (its request cancelled) needs no answer.
        batch = [(parameters, future) for parameters, future in batch if not future.done()]
        if len(batch) == 1:
            [(parameters, future)] = batch
            rows = await self._run(read.single, parameters)
            if not future.done():
                future.set_result(rows)
        elif batch:
            arrays = {key: [parameters[key] for parameters, _ in batch] for key in read.keys}
            answers: list[list[Sequence[Any]]] = [[] for _ in batch]
            for row in await self._run(read.many, arrays):
                answers[row[-1] - 1].append(row[:-1])
            for (_, future), rows_of_one in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(rows_of_one)

    def _settle(
        self, read: BatchedRead, queue: _Queue, batch: Waiting, task: asyncio.Task[None]
    ) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        for _, future in batch:
            if future.done():
                continue
            if error is None:
                future.cancel()  # the task was cancelled (shutdown): so are its reads
            else:
                # Each caller raises it: a database gone away is a 503 for every one of them.
                future.set_exception(error)
        self._send_next(read, queue)
