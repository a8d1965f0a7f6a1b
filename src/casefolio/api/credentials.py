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

from casefolio.api.recent import Recent
from casefolio.domain.principal import Principal

TTL_SECONDS = 2.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Verified:
    principal: Principal
    api_enabled: bool


class CredentialCache:
    def __init__(
        self,
        ttl: float = TTL_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recent: Recent[str, Verified] = Recent(ttl, max_entries, clock)

    def get(self, secret_hash: str) -> Verified | None:
        return self._recent.get(secret_hash)

    def put(self, secret_hash: str, principal: Principal, api_enabled: bool) -> None:
        self._recent.put(secret_hash, Verified(principal, api_enabled))

    def clear(self) -> None:
        self._recent.clear()
