"""The project page of the web interface: the project's name with the caller's role, its
folders, and a page of its documents (one folder's, or all), newest first or by title,
filtered by title, a keyset page at a time (as fast at 10^6 documents as at 100).

What the page shows is read as plain rows by statements built once per shape, on any
Reader, so that the read model's reader (fastpath/) can prepare them: the page is asked for
at every click. A listed document is what the list shows (its title, when it changed, its
current file's name, number and size), read with its current version in one statement.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, cast

from sqlalchemy import Select, Table, bindparam, select, tuple_

from casefolio.db.live import LIVE
from casefolio.db.models import Document, DocumentVersion, Folder, Project
from casefolio.db.reads import Reader, read_all
from casefolio.db.types import lowered
from casefolio.domain import access, folders
from casefolio.domain.access import ProjectScope
from casefolio.domain.errors import NotFound
from casefolio.domain.pages import MAX_LIMIT, Page, decode_cursor, encode_cursor
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability

Sort = Literal["updated", "title"]
SORTS: tuple[Sort, ...] = ("updated", "title")
MAX_FILTER = 200
#: LIKE's escape character for the title filter (the filter's own % and _ match themselves).
_ESCAPE = "/"
_DOCUMENTS, _VERSIONS, _FOLDERS, _PROJECTS = (
    cast(Table, model.__table__) for model in (Document, DocumentVersion, Folder, Project)
)


@dataclass(frozen=True)
class Listing:
    folder_id: int | None = None
    sort: Sort = "updated"
    title_contains: str = ""
    cursor: str | None = None
    limit: int = 50


class ProjectHeading(NamedTuple):
    id: int
    name: str


class FolderEntry(NamedTuple):
    id: int
    name: str
    parent_id: int | None


@dataclass(frozen=True)
class ProjectPage:
    """What the project page shows; `folders` only when asked for (a list refreshed on its
    own does not show them)."""

    scope: ProjectScope
    project: ProjectHeading
    documents: Page[BrowsedDocument]
    folders: list[FolderEntry] | None


async def project_page(
    db: Reader, *, who: Principal, project_id: int, listing: Listing, with_folders: bool = True
) -> ProjectPage:
    """The project page for `who`: NotFound where the project is invisible to them."""
    found = await read_all(
        db, _PROJECT_AND_RANK, {"project_id": project_id, "user_id": who.user_id}
    )
    if not found:
        raise NotFound(f"Project {project_id} not found.")
    name, rank = found[0]
    scope = access.scope_ranked(who, project_id, rank, Capability.DOCUMENTS_READ)
    documents = await documents_page(db, scope=scope, listing=listing)
    folders = await folder_entries(db, scope=scope) if with_folders else None
    return ProjectPage(scope, ProjectHeading(project_id, name), documents, folders)


async def folder_entries(db: Reader, *, scope: ProjectScope) -> list[FolderEntry]:
    """The folders of the scope's project (at most MAX_LIMIT), for a page's folder tree."""
    rows = await read_all(db, _FOLDERS_OF_PROJECT, {"project_id": scope.project_id})
    return [FolderEntry(*row) for row in rows]


_PROJECT_AND_RANK = select(_PROJECTS.c.name, access.role_rank_column(_PROJECTS.c.id)).where(
    _PROJECTS.c.id == bindparam("project_id")
)
_FOLDERS_OF_PROJECT = (
    select(_FOLDERS.c.id, _FOLDERS.c.name, _FOLDERS.c.parent_id)
    .where(_FOLDERS.c.project_id == bindparam("project_id"))
    .order_by(_FOLDERS.c.id)
    .limit(MAX_LIMIT)
)


@dataclass(frozen=True, slots=True)
class BrowsedDocument:
    """A document as the web page's list shows it, with its current version's file (the
    API's list reads more: document_pages.ListedDocument)."""

    id: int
    title: str
    updated_at: datetime
    file_name: str
    number: int
    size: int


async def documents_page(
    db: Reader, *, scope: ProjectScope, listing: Listing
) -> Page[BrowsedDocument]:
    """A page of the documents of the scope's project (access.scope has checked the
    caller's right to read them: the page the project page shows asks it once). A session
    or the read model's faster reader will do."""
    parameters: dict[str, Any] = {"project_id": scope.project_id, "limit": listing.limit + 1}
    if listing.folder_id is not None:
        parameters["folder_id"] = listing.folder_id
        await folders.require_in_project(
            db, project_id=scope.project_id, folder_id=listing.folder_id
        )
    wanted = listing.title_contains.strip()[:MAX_FILTER]
    if wanted:
        for special in (_ESCAPE, "%", "_"):
            wanted = wanted.replace(special, _ESCAPE + special)
        parameters["title_part"] = wanted  # lowered by the database, as the title is
    by_title = listing.sort == "title"
    if listing.cursor:
        parameters["after_key"], parameters["after_id"] = decode_cursor(
            listing.cursor, (str, int) if by_title else (datetime, int)
        )
    statement = _page_statement(
        by_title=by_title,
        folder="folder_id" in parameters,
        title_filter=bool(wanted),
        after="after_id" in parameters,
    )
    items = [BrowsedDocument(*row) for row in await read_all(db, statement, parameters)]
    if len(items) > listing.limit:
        items = items[: listing.limit]
        last = items[-1]
        return Page(items, encode_cursor((last.title if by_title else last.updated_at, last.id)))
    return Page(items, None)


@functools.cache
def _page_statement(
    *, by_title: bool, folder: bool, title_filter: bool, after: bool
) -> Select[Any]:
    """The page statement of one shape (sort and which filters it has), built once: by title
    A→Z, or newest first; a key after the cursor's (`after_key`, `after_id`)."""
    documents = _DOCUMENTS.c
    key = documents.title if by_title else documents.updated_at
    statement = (
        select(
            documents.id,
            documents.title,
            documents.updated_at,
            _VERSIONS.c.file_name,
            _VERSIONS.c.number,
            _VERSIONS.c.size,
        )
        .select_from(_DOCUMENTS.join(_VERSIONS, _VERSIONS.c.id == documents.current_version_id))
        .where(documents.project_id == bindparam("project_id"), LIVE)
    )
    if folder:
        statement = statement.where(documents.folder_id == bindparam("folder_id"))
    if title_filter:
        statement = statement.where(
            lowered(documents.title).contains(
                lowered(bindparam("title_part", type_=documents.title.type)), escape=_ESCAPE
            )
        )
    if after:
        position = tuple_(bindparam("after_key", type_=key.type), bindparam("after_id"))
        rows = tuple_(key, documents.id)
        statement = statement.where(rows > position if by_title else rows < position)
    order = (key, documents.id) if by_title else (key.desc(), documents.id.desc())
    return statement.order_by(*order).limit(bindparam("limit"))
