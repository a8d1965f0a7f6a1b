"""The read model: which reader the hottest domain reads run on (the seam's switch)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TypeVar, cast

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.reads import Reader
from casefolio.fastpath.answers import Answers
from casefolio.fastpath.statements import StatementReader

T = TypeVar("T")


@dataclass(frozen=True)
class ReadModel:
    """Runs domain reads on the fast path's StatementReader (`statements`, when fast) or on
    a plain read session of the database."""

    db: Database
    statements: StatementReader | None = None
    #: Whole answers kept while the database is unchanged (`remembered`).
    answers: Answers = field(default_factory=Answers, compare=False)

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

    async def remembered(
        self, key: Hashable, read: Callable[[Reader], Awaitable[T]], size: Callable[[T], int]
    ) -> T:
        """Given a key naming everything a read's answer depends on but the database (the
        caller, the request's values), the read, and how much its answer weighs, run it, or,
        when fast and nothing was committed since it ran for the same key, return the answer
        it gave then (fastpath/answers.py). A read that raises keeps nothing."""
        if self.statements is None:
            return await self.read(read)
        version = await self.statements.version()
        kept = self.answers.get(key, version)
        if kept is not None:
            return cast(T, kept)
        answer = await read(self.statements)
        self.answers.put(key, version, answer, size(answer))
        return answer

    def close(self) -> None:
        """Close the connections the fast reader opened (before the database closes)."""
        if self.statements is not None:
            self.statements.close()
