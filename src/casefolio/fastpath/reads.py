"""The read model: which reader the hottest domain reads run on (the seam's switch)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.reads import Reader
from casefolio.fastpath.statements import StatementReader

T = TypeVar("T")


@dataclass(frozen=True)
class ReadModel:
    """Runs domain reads on the fast path's StatementReader (`statements`, when fast) or on
    a plain read session of the database."""

    db: Database
    statements: StatementReader | None = None

    @classmethod
    def open(cls, db: Database, settings: Settings) -> ReadModel:
        """Given the database and settings, return the read model `fast_reads` chose."""
        if not settings.fast_reads:
            return cls(db)
        return cls(db, StatementReader.for_database(db, settings))

    @property
    def fast(self) -> bool:
        return self.statements is not None

    async def read(self, read: Callable[[Reader], Awaitable[T]]) -> T:
        """Given a domain read waiting for its reader (functools.partial of, say,
        `documents.get` with its keywords), run it and return its answer."""
        if self.statements is not None:
            return await read(self.statements)
        async with self.db.read() as session:
            return await read(session)

    def close(self) -> None:
        """Close the connections the fast reader opened (before the database closes)."""
        if self.statements is not None:
            self.statements.close()
