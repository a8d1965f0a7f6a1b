"""A short-lived, bounded, in-process memory: what the credential and upload-grant memories
(api/credentials.py, api/grants.py) both are."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
#: "A couple of seconds": long enough for a burst of requests to pay one look-up.
TTL_SECONDS = 2.0
MAX_ENTRIES = 10_000


class Recent(Generic[K, V]):
    """Values remembered for `ttl` seconds by `clock`; past `max_entries` it starts afresh
    (crude, but bounded: a cold memory is only slower)."""

    def __init__(
        self,
        ttl: float = TTL_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        """The value remembered for `key` no more than `ttl` seconds ago, else None."""
        entry = self._entries.get(key)
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (self._clock() + self._ttl, value)

    def clear(self) -> None:
        self._entries.clear()
