"""Which integrity errors mean a concurrent change, and which a bug; which errors mean the
database's disk is full, or a value past one of its limits.

The domain checks uniqueness and existence before it writes; a unique or foreign-key
violation that still reaches the database is the race those checks cannot see (two
writers at once, a row deleted meanwhile), and retrying is the answer. Any other
violation (NOT NULL, CHECK) is a defect of ours, not of the request.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError

# PostgreSQL SQLSTATEs: unique_violation, foreign_key_violation.
_POSTGRES = frozenset({"23505", "23503"})
# sqlite3's extended result codes (Python 3.11+: sqlite_errorname).
_SQLITE = frozenset(
    {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_FOREIGNKEY"}
)


def is_concurrent_change(exc: IntegrityError) -> bool:
    """Given an integrity error, return whether it means a concurrent change (a 409)."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate is not None:
        return str(sqlstate) in _POSTGRES
    return getattr(orig, "sqlite_errorname", None) in _SQLITE


#: PostgreSQL SQLSTATEs: deadlock_detected, serialization_failure: two writers that each
#: wait for the other; the database ends one of them, whose request may simply be retried.
_POSTGRES_TURNS = frozenset({"40P01", "40001"})


def is_write_conflict(exc: DBAPIError) -> bool:
    """Given a database error, return whether the database ended this transaction to let a
    concurrent one go on (a 409: nothing was changed, retry)."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return sqlstate is not None and str(sqlstate) in _POSTGRES_TURNS


def is_out_of_space(exc: DBAPIError) -> bool:
    """Given a database error, return whether the database's disk (or quota) is full:
    PostgreSQL's disk_full, SQLite's SQLITE_FULL."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate is not None:
        return str(sqlstate) == "53100"
    return getattr(orig, "sqlite_errorname", None) == "SQLITE_FULL"


def is_over_a_limit(exc: Exception) -> bool:
    """Given an error, return whether the database refused a value past one of its limits
    (PostgreSQL's program_limit_exceeded: a text of more distinct words than a tsvector
    holds, 1 MB)."""
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return sqlstate is not None and str(sqlstate) == "54000"
