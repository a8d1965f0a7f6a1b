"""The read model: which reader the reads clients make most (a document, a page of
documents) run on, behind one seam.

Fast, a domain read runs on the database's StatementReader (db/engine.py): SQLite statements
compiled once and run on the event loop, PostgreSQL reads of one statement sharing a round
trip (db/batching.py). Plain, on an ordinary SQLAlchemy read session per read. The domain
functions (`documents.get`, `documents.list_page`) take either, so both answer alike;
tests/api/test_fast_path.py checks that they do, read by read. `CASEFOLIO_FAST_READS=false`
switches the fast path off (say, to rule it out while chasing a bug, or after an upgrade).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from casefolio.db.engine import Database, Reader

T = TypeVar("T")


@dataclass(frozen=True)
class ReadModel:
    """Runs domain reads on the fast path's reader (`fast`) or a plain read session."""

    db: Database
    fast: bool = True

    async def read(self, read: Callable[[Reader], Awaitable[T]]) -> T:
        """Given a domain read waiting for its reader (functools.partial of, say,
        `documents.get` with its keywords), run it and return its answer."""
        if self.fast:
            return await read(self.db.statements)
        async with self.db.read() as session:
            return await read(session)
