"""A short-lived, in-process memory of verified tokens.

Looking a token up costs a database session on every request, which is most of the cost of a
small GET. Remembering the answer for a couple of seconds makes a burst of requests cost one
look-up. The price, stated in the README: another process may accept a revoked or expired
token, or miss a settings change, for up to TTL seconds. This process forgets at once
(`clear()` is called by the routes that revoke tokens or change settings).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from casefolio.domain.principal import Principal

TTL_SECONDS = 2.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Verified:
    principal: Principal
    api_enabled: bool
    expires: float


class CredentialCache:
    def __init__(
        self,
        ttl: float = TTL_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: dict[str, Verified] = {}

    def get(self, secret_hash: str) -> Verified | None:
        entry = self._entries.get(secret_hash)
        if entry is None or entry.expires < self._clock():
            return None
        return entry

    def put(self, secret_hash: str, principal: Principal, api_enabled: bool) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()  # crude, but bounded; a cold cache is only slower
        self._entries[secret_hash] = Verified(principal, api_enabled, self._clock() + self._ttl)

    def clear(self) -> None:
        self._entries.clear()
