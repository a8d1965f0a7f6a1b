"""A short-lived, in-process memory of verified tokens.

Looking a token up costs a database session on every request, which is most of the cost of a
small GET. Remembering the answer for a couple of seconds makes a burst of requests cost one
look-up. The price, stated in the README: another process may accept a revoked or expired
token, or miss a settings change, for up to TTL seconds. This process forgets at once
(`clear()` is called by the routes that revoke tokens or change settings).
"""

from __future__ import annotations

from dataclasses import dataclass

from casefolio.api.recent import TTL_SECONDS, Recent
from casefolio.domain.principal import Principal

__all__ = ["TTL_SECONDS", "CredentialCache", "Verified"]


@dataclass(frozen=True)
class Verified:
    principal: Principal
    api_enabled: bool


class CredentialCache(Recent[str, Verified]):
    """Verified tokens by the hash of their secret."""

    def remember(self, secret_hash: str, principal: Principal, api_enabled: bool) -> None:
        self.put(secret_hash, Verified(principal, api_enabled))
