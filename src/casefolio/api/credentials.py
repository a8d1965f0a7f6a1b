"""A short-lived, in-process memory of verified tokens.

Looking a token up costs a database session on every request, which is most of the cost of a
small GET. Remembering the answer for a couple of seconds makes a burst of requests cost one
look-up. The price, stated in the README: another process may accept a revoked token, or
miss a settings change, for up to TTL seconds. This process forgets at once (`clear()` is
called by the routes that revoke tokens or change settings). A token's expiry is kept with
it: an expired token is refused at once, remembered or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from casefolio.api.recent import MAX_ENTRIES, TTL_SECONDS, Recent
from casefolio.db.types import utcnow
from casefolio.domain.principal import Principal

__all__ = ["TTL_SECONDS", "CredentialCache", "Verified"]


@dataclass(frozen=True)
class Verified:
    principal: Principal
    api_enabled: bool
    expires_at: datetime | None


class CredentialCache(Recent[str, Verified]):
    """Verified tokens by the hash of their secret. `now` is the time tokens expire by, for
    the ones remembered here and for those looked up (api/auth.py)."""

    def __init__(
        self,
        ttl: float = TTL_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(ttl, max_entries, clock)
        self.now = now

    def remember(self, secret_hash: str, verified: Verified) -> None:
        self.put(secret_hash, verified)

    def recall(self, secret_hash: str, now: datetime) -> Verified | None:
        """The token remembered under `secret_hash`, unless it has expired by `now`."""
        found = self.get(secret_hash)
        if found is None or (found.expires_at is not None and found.expires_at <= now):
            return None
        return found
