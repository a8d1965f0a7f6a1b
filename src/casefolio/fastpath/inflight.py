"""Whether the running request is the only one this process is serving, and a way to run a
short blocking step (an fsync) accordingly.

A request's durable steps (its blob's fsyncs, the database log's) run in a worker thread so
that other requests keep the event loop meanwhile. For a caller who is alone that buys
nothing and costs two thread hand-offs per step, each a wake-up the scheduler may take its
time over on a busy machine: most integrations write one request after another, and each
write waits for those hand-offs (bench/README.md, issue 26). So a request that is the only
one in flight runs such a step on the loop: nothing else is waiting for the loop, and a
request arriving meanwhile waits at most that one step. Work outside requests (the webhook
and search workers) never counts as alone: it keeps its thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextvars import ContextVar, copy_context
from typing import Any, TypeVar

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

T = TypeVar("T")

_in_flight = 0
#: Of those, the ones that may write (not GET or HEAD: a long-poll waiting is not one).
_writing = 0
_serving: ContextVar[bool] = ContextVar("casefolio_serving_request", default=False)
_READS = frozenset({"GET", "HEAD"})


class RequestsInFlight:
    """ASGI middleware counting the HTTP requests in progress (in this process)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        global _in_flight, _writing
        writes = scope["method"] not in _READS
        _in_flight += 1
        _writing += writes
        marked = _serving.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            _serving.reset(marked)
            _in_flight -= 1
            _writing -= writes


def alone() -> bool:
    """Whether the caller runs for a request, and no other request is in progress."""
    return _in_flight == 1 and _serving.get()


def among_other_writers() -> bool:
    """Whether the caller runs for a request that may write (not GET or HEAD) while other
    such requests are in progress."""
    return _serving.get() and _writing > 1


async def run_blocking(step: Callable[[], T]) -> T:
    """Run a short blocking step: on the event loop when the request is `alone`, else in a
    worker thread (where a cancellation leaves it to finish, as anyio does)."""
    if alone():
        return step()
    return await anyio.to_thread.run_sync(step)


def beside(step: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Start `step` as a task running beside the request's own work, not as it: its
    blocking steps keep their worker thread, so that the request's statements go on
    meanwhile (an upload's blob stored while its rows are written, on PostgreSQL)."""
    context = copy_context()
    context.run(_serving.set, False)
    return asyncio.get_running_loop().create_task(step, context=context)
