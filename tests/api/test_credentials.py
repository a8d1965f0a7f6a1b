from __future__ import annotations

from casefolio.api.credentials import CredentialCache, Verified
from casefolio.api.grants import RecentGrants
from casefolio.domain.principal import Principal

WHO = Principal(user_id=1, email="a@example.com", name="A", is_operator=False, token_id=7)


def test_remembered_only_until_the_ttl() -> None:
    now = [100.0]
    cache = CredentialCache(ttl=2.0, clock=lambda: now[0])
    cache.remember("h", Verified(WHO, api_enabled=True, expires_at=None))
    now[0] += 2.0
    entry = cache.get("h")
    assert entry is not None and entry.principal == WHO and entry.api_enabled
    now[0] += 0.001
    assert cache.get("h") is None


def test_clear_and_bound() -> None:
    cache = CredentialCache(ttl=60, max_entries=2)
    cache.remember("a", Verified(WHO, api_enabled=True, expires_at=None))
    cache.remember("b", Verified(WHO, api_enabled=False, expires_at=None))
    cache.remember("c", Verified(WHO, api_enabled=True, expires_at=None))  # starts afresh
    assert cache.get("a") is None and cache.get("c") is not None
    cache.clear()
    assert cache.get("c") is None


def test_a_yes_to_an_upload_is_remembered_until_the_ttl_and_a_no_never() -> None:
    now = [100.0]
    grants = RecentGrants(ttl=2.0, clock=lambda: now[0])
    assert not grants.allows(1, 9)  # nothing remembered: the caller checks
    grants.remember(1, 9)
    now[0] += 2.0
    assert grants.allows(1, 9)
    assert not grants.allows(1, 10) and not grants.allows(2, 9)  # per user and project
    now[0] += 0.001
    assert not grants.allows(1, 9)
