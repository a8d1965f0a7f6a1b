"""Per-token request budgets with the `limits` library; Redis makes the budget shared."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from casefolio.domain.errors import RateLimited

STATE_KEY = "casefolio_ratelimit"


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


class RateLimiter:
    """A sliding-window counter per key: two counters, O(1) per hit in memory and in Redis,
    no double bursts at window edges (a moving window keeps one timestamp per request)."""

    def __init__(self, storage: Storage, default_per_minute: int) -> None:
        self._storage = storage
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self.default_per_minute = default_per_minute

    @classmethod
    def from_url(cls, redis_url: str, default_per_minute: int) -> RateLimiter:
        if not redis_url:
            # In-process counters: right for one process, multiplied by N with N workers.
            return cls(MemoryStorage(), default_per_minute)
        scheme, _, rest = redis_url.partition("://")
        storage = storage_from_string(f"async+{scheme}://{rest}")
        assert isinstance(storage, Storage)
        return cls(storage, default_per_minute)

    async def hit(self, key: str, per_minute: int | None = None) -> Budget:
        """Spend one request from `key`'s budget; raise RateLimited when none is left."""
        item = RateLimitItemPerMinute(per_minute or self.default_per_minute)
        allowed = await self._strategy.hit(item, "casefolio", key)
        stats = await self._strategy.get_window_stats(item, "casefolio", key)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        budget = Budget(item.amount, stats.remaining, reset)
        if not allowed:
            raise RateLimited(
                f"Rate limit of {item.amount} requests per minute exceeded; "
                f"retry in {max(reset, 1)} seconds.",
                retry_after=max(reset, 1),
                budget=budget,
            )
        return budget

    async def reset(self) -> None:
        await self._storage.reset()

    async def close(self) -> None:
        # Memory storage runs an expiry task; Redis holds a connection pool.
        closer = getattr(self._storage, "close", None)
        if closer is not None:
            await closer()
