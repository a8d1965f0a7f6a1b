"""The fast path's tests use the PostgreSQL database of a test's own that tests/db has."""

from tests.db.conftest import pg_settings

__all__ = ["pg_settings"]
