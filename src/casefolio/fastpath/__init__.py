"""The read model: how the reads clients make most (a document, a page of documents) reach
the database, behind one seam.

Fast, they go through the database's StatementReader (db/engine.py): SQLite statements
compiled once and run on the event loop, PostgreSQL reads of one statement sharing a round
trip (db/batching.py). Plain, through an ordinary SQLAlchemy read session per read. Both run
the same domain functions, which take either, so they answer alike; tests/api/test_fast_path.py
checks that they do, read by read. `CASEFOLIO_FAST_READS=false` switches the fast path off
(say, to rule it out while chasing a bug, or after a SQLAlchemy upgrade).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TypeVar

from casefolio.db.engine import Database, Reader
from casefolio.domain import documents
from casefolio.domain.documents import DocumentView
from casefolio.domain.pages import Page, PageRequest
from casefolio.domain.principal import Principal

T = TypeVar("T")


@dataclass(frozen=True)
class ReadModel:
    """The hottest reads, through the fast path (`fast`) or a plain read session."""

    db: Database
    fast: bool = True

    async def _run(self, read: Callable[[Reader], Awaitable[T]]) -> T:
        if self.fast:
            return await read(self.db.statements)
        async with self.db.read() as session:
            return await read(session)

    async def document(
        self, *, who: Principal, document_id: int, project_id: int | None = None
    ) -> DocumentView:
        """`documents.get`: the document if the caller may read it, else NotFound."""
        get = partial(documents.get, who=who, document_id=document_id, project_id=project_id)
        return await self._run(get)

    async def document_page(
        self,
        *,
        who: Principal,
        project_id: int,
        page: PageRequest,
        folder_id: int | None = None,
        changed_since: datetime | None = None,
    ) -> Page[DocumentView]:
        """`documents.list_page`: a page of the project's (or a folder's) documents."""
        list_page = partial(
            documents.list_page,
            who=who,
            project_id=project_id,
            page=page,
            folder_id=folder_id,
            changed_since=changed_since,
        )
        return await self._run(list_page)
