"""Whether the blob store can store and read files, as /health reports it (`blobStore`).

Anybody may call /health (a load balancer has no token), so the store is asked at most once
every TTL_SECONDS per process: a flood of calls must not become a flood of requests to the
bucket, nor of lines in the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio

from casefolio.storage.base import BlobStore, BlobStoreUnavailable

#: obstore retries for seconds; a health check must answer sooner than that.
ANSWER_SECONDS = 1.0
TTL_SECONDS = 2.0
log = logging.getLogger(__name__)


class BlobStoreHealth:
    """ "ok" or "unavailable": asked of the store at most once every `ttl` seconds of
    `clock`, by one caller at a time (the others wait and share its answer). The log says
    when the answer changes, not at every call."""

    def __init__(
        self,
        blobs: BlobStore,
        *,
        ttl: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._blobs = blobs
        self._ttl = ttl
        self._clock = clock
        self._asking = anyio.Lock()
        self._answer = "ok"
        self._asked_at: float | None = None

    async def __call__(self) -> str:
        async with self._asking:
            if self._asked_at is None or self._clock() >= self._asked_at + self._ttl:
                self._answer = await self._ask()
                self._asked_at = self._clock()
            return self._answer

    async def _ask(self) -> str:
        try:
            with anyio.fail_after(ANSWER_SECONDS):
                await self._blobs.check()
        except (BlobStoreUnavailable, TimeoutError) as exc:
            if self._answer == "ok":
                log.warning("the blob store is unavailable: %s", str(exc) or "no answer in time")
            return "unavailable"
        if self._answer != "ok":
            log.warning("the blob store answers again")
        return "ok"
