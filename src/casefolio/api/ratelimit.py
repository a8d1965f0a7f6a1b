"""Per-token request budgets: sliding-window counters in memory, or in Redis (shared) with the
`limits` library."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from coredis.retry import NoRetryPolicy
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import SlidingWindowCounterSupport, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.limits import safe_string
from limits.storage import storage_from_string

from casefolio.domain.errors import RateLimited

STATE_KEY = "casefolio_ratelimit"
NAMESPACE = "casefolio"
#: How long a request waits for Redis before its budget is counted in this process.
SHARED_TIMEOUT_SECONDS = 1.0
#: After Redis failed, how long budgets are counted in this process before Redis is tried.
SHARED_RETRY_SECONDS = 5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]


class LocalWindows:
    """Sliding-window counters in this process's memory, with the arithmetic of `limits`'
    sliding window counter, so that one process counts as Redis does.

    Not `limits`' own memory storages: the asyncio one starts an expiry task on nearly every
    hit, the threaded one a timer thread while hits arrive; either cost a GET a fifth of its
    time (bench/README.md). Here a hit is two dictionary reads and
    a write; counters of finished windows are dropped when a new window starts.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._window = 0

    def hit(self, key: str, limit: int, expiry: int, now: float) -> tuple[bool, int, float]:
        """Spend one request of `limit` per `expiry` seconds from `key`'s budget at `now`.

        Return whether it was allowed, the requests left and when one more frees up.
        """
        window, elapsed = divmod(now, expiry)
        window_id = int(window)
        if window_id != self._window:
            self._start(window_id)
        previous = self._counts.get((key, window_id - 1), 0)
        current = self._counts.get((key, window_id), 0)
        # The share of the previous window still inside the sliding one ends here.
        previous_left = expiry - elapsed
        allowed = math.floor(previous * previous_left / expiry + current) + 1 <= limit
        if allowed:
            current += 1
            self._counts[(key, window_id)] = current
        remaining = max(0, limit - math.floor(previous * previous_left / expiry + current))
        if not (previous or current):
            return allowed, remaining, now
        reset_in = previous_left if current else math.inf
        if previous:
            reset_in = min(reset_in, previous_left % (expiry / previous))
        return allowed, remaining, now + reset_in

    def give_back(self, key: str, expiry: int, now: float) -> None:
        """Return one request to `key`'s budget: the latest counted, in this window or the
        one before."""
        window_id = int(now // expiry)
        for window in (window_id, window_id - 1):
            count = self._counts.get((key, window), 0)
            if count:
                self._counts[(key, window)] = count - 1
                return

    def reset(self) -> None:
        self._counts.clear()

    def __len__(self) -> int:
        """The counters held: those of the current and the previous window only."""
        return len(self._counts)

    def _start(self, window_id: int) -> None:
        # Only the previous window still counts.
        self._counts = {k: n for k, n in self._counts.items() if k[1] >= window_id - 1}
        self._window = window_id


class PerMinuteKeyedByName(RateLimitItemPerMinute):
    """A per-minute limit whose Redis counters are named by the key alone.

    `limits` names them by the amount too, so changing a token's `rateLimit` started it on
    empty counters: a client that had spent its minute got the new limit in full at once. The
    amount is only compared with the counts, so one key's counters serve any limit, as
    LocalWindows' do.
    """

    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        return "/".join([self.namespace, *map(safe_string, identifiers), "per-minute"])


class RateLimiter:
    """A sliding-window counter per key: two counters, O(1) per hit in memory and in Redis,
    no double bursts at window edges (a moving window keeps one timestamp per request).

    Shared counters live in Redis through `limits`; one process's in LocalWindows. While
    Redis cannot be reached, budgets are counted in this process instead (as Flask-Limiter's
    in-memory fallback does): a Redis outage multiplies a budget by the number of
    processes for its duration, rather than refusing every request. Redis is tried again
    SHARED_RETRY_SECONDS after a failure.
    """

    def __init__(
        self,
        default_per_minute: int,
        *,
        shared: Storage | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`shared`: an async storage all processes use (Redis); None counts in memory.

        `clock`: seconds since the epoch, by which the in-memory windows count and the retry
        of an unreachable Redis is timed (tests pass their own); shared windows always count
        by the real time, as `limits` does.
        """
        self._shared = shared
        self._clock = clock
        self._shared_strategy = SlidingWindowCounterRateLimiter(shared) if shared else None
        self._local = LocalWindows()
        #: While the clock is before this, Redis failed lately: count here.
        self._shared_retry_at = -math.inf
        self.default_per_minute = default_per_minute
        self._items: dict[int, RateLimitItem] = {}

    @classmethod
    def from_url(
        cls, redis_url: str, default_per_minute: int, *, clock: Callable[[], float] = time.time
    ) -> RateLimiter:
        if not redis_url:
            # In-process counters: right for one process, multiplied by N with N workers.
            return cls(default_per_minute, clock=clock)
        scheme, _, rest = redis_url.partition("://")
        storage = storage_from_string(
            f"async+{scheme}://{rest}",
            wrap_exceptions=True,
            connect_timeout=SHARED_TIMEOUT_SECONDS,
            stream_timeout=SHARED_TIMEOUT_SECONDS,
            # coredis's from_url retries a timed-out command twice: a Redis that hangs held
            # each request (and /health) three timeouts, not one.
            retry_policy=NoRetryPolicy(),  # type: ignore[arg-type]
        )
        if not isinstance(storage, Storage):
            raise TypeError(f"{redis_url!r} does not name an async counter storage")
        return cls(default_per_minute, shared=storage, clock=clock)

    @property
    def counts_in(self) -> str:
        """Where budgets are counted now: "redis", "process", or "process (Redis
        unreachable)"."""
        if self._shared_strategy is None:
            return "process"
        return "redis" if self._shared_now() else "process (Redis unreachable)"

    async def check_shared(self) -> str:
        """Ask Redis whether it answers (it is then used again at once); return `counts_in`."""
        if self._shared is not None:
            if await self._shared.check():  # a PING; False on any failure
                self._shared_retry_at = -math.inf
            elif self._shared_now():
                self._shared_failed("it did not answer a health check")
        return self.counts_in

    async def hit(self, key: str, per_minute: int | None = None) -> Budget:
        """Spend one request from `key`'s budget; raise RateLimited when none is left."""
        item = self._item(per_minute or self.default_per_minute)
        budget: Budget | None = None
        if shared := self._shared_now():
            try:
                allowed, budget = await _hit_shared(shared, item, key)
            except StorageError as exc:
                self._shared_failed(str(exc.storage_error) or type(exc.storage_error).__name__)
        if budget is None:
            now = self._clock()
            allowed, remaining, reset_time = self._local.hit(
                key, item.amount, item.get_expiry(), now
            )
            budget = Budget(item.amount, remaining, max(0, math.ceil(reset_time - now)))
        if not allowed:
            raise RateLimited(
                f"Rate limit of {item.amount} requests per minute exceeded; "
                f"retry in {max(budget.reset_seconds, 1)} seconds.",
                retry_after=max(budget.reset_seconds, 1),
                budget=budget,
            )
        return budget

    async def give_back(self, key: str, per_minute: int | None = None) -> None:
        """Undo one `hit` of `key` (an attempt that turned out not to count)."""
        item = self._item(per_minute or self.default_per_minute)
        if shared := self._shared_now():
            try:
                # A negative cost is a decrement in `limits`' sliding window script.
                await shared.hit(item, NAMESPACE, key, cost=-1)
                return
            except StorageError as exc:
                self._shared_failed(str(exc.storage_error) or type(exc.storage_error).__name__)
        self._local.give_back(key, item.get_expiry(), self._clock())

    def _shared_now(self) -> SlidingWindowCounterRateLimiter | None:
        """The shared counters, unless Redis failed in the last SHARED_RETRY_SECONDS."""
        return self._shared_strategy if self._clock() >= self._shared_retry_at else None

    def _shared_failed(self, reason: str) -> None:
        self._shared_retry_at = self._clock() + SHARED_RETRY_SECONDS
        log.warning(
            "Redis for the rate limits cannot be reached (%s): budgets are counted in this "
            "process; trying Redis again in %d seconds",
            reason,
            SHARED_RETRY_SECONDS,
        )

    def _item(self, per_minute: int) -> RateLimitItem:
        found = self._items.get(per_minute)
        if found is None:
            found = self._items[per_minute] = PerMinuteKeyedByName(per_minute)
        return found

    async def reset(self) -> None:
        if self._shared is not None:
            await self._shared.reset()
        self._local.reset()

    async def close(self) -> None:
        # Redis holds a connection pool.
        closer = getattr(self._shared, "close", None)
        if closer is not None:
            await closer()


async def _hit_shared(
    shared: SlidingWindowCounterRateLimiter, item: RateLimitItem, key: str
) -> tuple[bool, Budget]:
    allowed = await shared.hit(item, NAMESPACE, key)
    # The window's counts as `limits`' get_window_stats reads them, and its arithmetic, but
    # for the current window's reset: a window's counter lives two windows from its first
    # hit, and `limits` takes its time to live modulo the window, so a window started in the
    # millisecond of the read (a client's first request, most often) said "reset in 0 s"
    # (RateLimit-Reset: 1) while the request held its place for a minute.
    storage = cast(SlidingWindowCounterSupport, shared.storage)
    expiry = item.get_expiry()
    previous, previous_left, current, current_left = await storage.get_sliding_window(
        item.key_for(NAMESPACE, key), expiry
    )
    remaining = max(0, item.amount - math.floor(previous * previous_left / expiry + current))
    reset_in = (current_left % expiry or expiry) if current else math.inf
    if previous:
        reset_in = min(reset_in, previous_left % (expiry / previous))
    reset_seconds = 0 if math.isinf(reset_in) else math.ceil(reset_in)
    return allowed, Budget(item.amount, remaining, reset_seconds)
