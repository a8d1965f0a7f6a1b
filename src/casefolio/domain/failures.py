"""Which failures of a background step pass by themselves (the database restarting, its
lock held past the wait, the blob store away), as against a refusal of what the step tried
to store, which would fail the same way at every retry."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

from casefolio.db.engine import DatabaseUnavailable
from casefolio.fastpath.sqlite_inline import is_lock_timeout
from casefolio.storage.base import BlobStoreUnavailable


def passing(exc: BaseException) -> bool:
    """Whether a step's failure is a passing condition (logged in one line), not a bug nor
    a refusal of what it stored."""
    if isinstance(exc, DatabaseUnavailable | BlobStoreUnavailable | OSError):
        return True
    if isinstance(exc, OperationalError) and is_lock_timeout(exc):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
