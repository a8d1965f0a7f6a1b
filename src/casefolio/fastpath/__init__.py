"""The read model: how the reads clients make most (a document, a page of documents) reach
the database, behind one seam.

`FastReads` go through the database's StatementReader (db/engine.py): SQLite statements
compiled once and run on the event loop, PostgreSQL reads of one statement sharing a round
trip (db/batching.py). `PlainReads` go through an ordinary SQLAlchemy read session. Both run
the same domain functions, which take either, so they answer alike; tests/api/test_fast_path.py
checks that they do, read by read. `CASEFOLIO_FAST_READS=false` switches the fast path off
(say, to rule it out while chasing a bug, or after a SQLAlchemy upgrade).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from casefolio.db.engine import Database
from casefolio.domain import documents
from casefolio.domain.documents import DocumentView
from casefolio.domain.pages import Page, PageRequest
from casefolio.domain.principal import Principal


class ReadModel(Protocol):
    async def document(
        self, *, who: Principal, document_id: int, project_id: int | None = None
    ) -> DocumentView:
        """`documents.get`: the document if the caller may read it, else NotFound."""
        ...

    async def document_page(
        self,
        *,
        who: Principal,
        project_id: int,
        page: PageRequest,
        folder_id: int | None = None,
        changed_since: datetime | None = None,
    ) -> Page[DocumentView]:
        """`documents.list_page`: a page of the project's (or folder's) documents."""
        ...


@dataclass(frozen=True)
class FastReads:
    """Reads through the StatementReader, no session."""

    db: Database

    async def document(
        self, *, who: Principal, document_id: int, project_id: int | None = None
    ) -> DocumentView:
        return await documents.get(
            self.db.statements, who=who, document_id=document_id, project_id=project_id
        )

    async def document_page(
        self,
        *,
        who: Principal,
        project_id: int,
        page: PageRequest,
        folder_id: int | None = None,
        changed_since: datetime | None = None,
    ) -> Page[DocumentView]:
        return await documents.list_page(
            self.db.statements,
            who=who,
            project_id=project_id,
            page=page,
            folder_id=folder_id,
            changed_since=changed_since,
        )


@dataclass(frozen=True)
class PlainReads:
    """Reads through an ordinary SQLAlchemy read session, one per read."""

    db: Database

    async def document(
        self, *, who: Principal, document_id: int, project_id: int | None = None
    ) -> DocumentView:
        async with self.db.read() as session:
            return await documents.get(
                session, who=who, document_id=document_id, project_id=project_id
            )

    async def document_page(
        self,
        *,
        who: Principal,
        project_id: int,
        page: PageRequest,
        folder_id: int | None = None,
        changed_since: datetime | None = None,
    ) -> Page[DocumentView]:
        async with self.db.read() as session:
            return await documents.list_page(
                session,
                who=who,
                project_id=project_id,
                page=page,
                folder_id=folder_id,
                changed_since=changed_since,
            )


def read_model(db: Database, *, fast: bool) -> ReadModel:
    """Given the database and the `fast_reads` setting, return the read model to serve."""
    return FastReads(db) if fast else PlainReads(db)
