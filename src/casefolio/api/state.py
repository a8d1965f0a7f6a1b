"""What a running app holds: settings, database, blob store, rate limiter."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from casefolio.api.credentials import CredentialCache
from casefolio.api.grants import RecentGrants
from casefolio.api.ratelimit import RateLimiter
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.fastpath.reads import ReadModel
from casefolio.storage.base import BlobStore
from casefolio.storage.health import BlobStoreHealth


@dataclass
class AppState:
    settings: Settings
    db: Database
    blobs: BlobStore
    limiter: RateLimiter
    credentials: CredentialCache = field(default_factory=CredentialCache)
    upload_grants: RecentGrants = field(default_factory=RecentGrants)
    # The read model the `fast_reads` setting chose (fastpath/).
    reads: ReadModel = field(init=False)
    #: CASEFOLIO_TRUSTED_PROXIES, parsed once: every request asks (api/proxies.py).
    proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(init=False)
    #: /health's `blobStore`, asked of the store now and then, not at every call.
    blob_health: BlobStoreHealth = field(init=False)

    def __post_init__(self) -> None:
        self.reads = ReadModel.open(self.db, self.settings)
        self.proxies = self.settings.trusted_proxy_networks
        self.blob_health = BlobStoreHealth(self.blobs)
