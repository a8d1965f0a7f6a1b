"""The document list of the web pages: one folder (or all) of a project, newest first or by
title, filtered by title, a keyset page at a time (as fast at 10^6 documents as at 100)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.live import LIVE
from casefolio.db.models import Document
from casefolio.domain import documents, folders
from casefolio.domain.access import ProjectScope
from casefolio.domain.documents import DocumentView
from casefolio.domain.pages import Page, PageRequest, decode_cursor, fetch_row_page
from casefolio.domain.rows import DocumentRow, row_of

Sort = Literal["updated", "title"]
SORTS: tuple[Sort, ...] = ("updated", "title")
MAX_FILTER = 200
_DOCUMENTS = cast(Table, Document.__table__)


@dataclass(frozen=True)
class Listing:
    folder_id: int | None = None
    sort: Sort = "updated"
    title_contains: str = ""
    cursor: str | None = None
    limit: int = 50


async def documents_page(
    session: AsyncSession, *, scope: ProjectScope, listing: Listing
) -> Page[DocumentView]:
    """A page of the documents of the scope's project (access.scope has checked the
    caller's right to read them: the page the project page shows asks it once)."""
    stmt = select(*_DOCUMENTS.columns).where(_DOCUMENTS.c.project_id == scope.project_id, LIVE)
    if listing.folder_id is not None:
        await folders.get(session, scope=scope, folder_id=listing.folder_id)
        stmt = stmt.where(_DOCUMENTS.c.folder_id == listing.folder_id)
    wanted = listing.title_contains.strip()[:MAX_FILTER]
    if wanted:
        stmt = stmt.where(_DOCUMENTS.c.title.icontains(wanted, autoescape=True))
    key: list[Any]
    types: tuple[type, ...]
    if listing.sort == "title":
        key, types, descending = [_DOCUMENTS.c.title, _DOCUMENTS.c.id], (str, int), False
    else:
        key, types, descending = [_DOCUMENTS.c.updated_at, _DOCUMENTS.c.id], (datetime, int), True
    after = decode_cursor(listing.cursor, types) if listing.cursor else None
    found = await fetch_row_page(
        session,
        stmt,
        key=key,
        page=PageRequest(limit=listing.limit, after=after),
        make=lambda row: row_of(DocumentRow, row._mapping),
        key_of=(lambda d: (d.title, d.id))
        if listing.sort == "title"
        else (lambda d: (d.updated_at, d.id)),
        descending=descending,
    )
    return Page(await documents.views(session, found.items), found.next_cursor)
