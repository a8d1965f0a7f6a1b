"""Folders: a tree per project; names are unique among siblings."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, exists, insert, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.live import LIVE
from casefolio.db.models import Document, Folder
from casefolio.db.reads import Reader, read_all
from casefolio.db.types import utcnow
from casefolio.domain import events, holds, text
from casefolio.domain.access import ProjectScope
from casefolio.domain.errors import Conflict, Invalid, NotFound
from casefolio.domain.pages import Page, PageRequest, fetch_id_page
from casefolio.domain.roles import Capability
from casefolio.domain.rows import FolderRow

MAX_NAME = 255


def check_name(name: str) -> str:
    """Given a folder's name as sent, return it as stored (stripped, NFC) or raise Invalid:
    the rule of every folder, a template's too."""
    name = text.stripped_name(name, limit=MAX_NAME, what="A folder name", field="name")
    if "/" in name:
        raise Invalid("A folder name cannot contain '/'.", [{"field": "name", "message": "has /"}])
    return name


async def get(session: AsyncSession, *, scope: ProjectScope, folder_id: int) -> Folder:
    return await scope.get(session, Folder, folder_id)


async def require_in_project(db: Reader, *, project_id: int, folder_id: int) -> None:
    """NotFound unless the folder is one of the project's: for the list reads, which filter
    by a folder and run on any Reader."""
    found = await read_all(db, _IN_PROJECT, {"project_id": project_id, "folder_id": folder_id})
    if not found:
        raise _not_in(project_id, folder_id)


# Of the table's columns, not the entity's: a plain statement the fast reader prepares.
_FOLDERS = cast(Table, Folder.__table__)
_IN_PROJECT = select(_FOLDERS.c.id).where(
    _FOLDERS.c.id == bindparam("folder_id"), _FOLDERS.c.project_id == bindparam("project_id")
)


def _not_in(project_id: int, folder_id: int) -> NotFound:
    return NotFound(f"Folder {folder_id} not found in project {project_id}.")


async def get_by_name(
    session: AsyncSession, *, scope: ProjectScope, name: str, parent_id: int | None = None
) -> Folder:
    """Return the folder called `name` (as folder names are stored: see text.as_stored);
    when several folders share it, `parent_id` decides."""
    project_id = scope.project_id
    name = text.as_stored(name)
    stmt = select(Folder).where(Folder.project_id == project_id, Folder.name == name)
    if parent_id is not None:
        stmt = stmt.where(Folder.parent_key == parent_id)
    found = list(await session.scalars(stmt.order_by(Folder.id).limit(10)))
    if not found:
        raise NotFound(f"No folder named '{name}' in project {project_id}.")
    if len(found) > 1:
        ids = ", ".join(str(f.id) for f in found)
        raise Conflict(
            f"Several folders are named '{name}' (ids {ids}); add ?parentId= to choose one."
        )
    return found[0]


async def find_child(
    session: AsyncSession, *, scope: ProjectScope, parent_id: int | None, name: str
) -> Folder | None:
    """Return the folder called `name` directly under `parent_id` (None: the root), if any."""
    if text.unstorable(name) is not None:
        return None  # no stored name holds it (a directory name that is not UTF-8, say)
    stmt = select(Folder).where(
        Folder.project_id == scope.project_id,
        Folder.parent_key == (parent_id or 0),
        Folder.name == text.as_stored(name),
    )
    return (await session.scalars(stmt)).one_or_none()


async def list_page(
    session: AsyncSession, *, scope: ProjectScope, page: PageRequest
) -> Page[Folder]:
    stmt = select(Folder).where(Folder.project_id == scope.project_id)
    return await fetch_id_page(session, stmt, id_column=Folder.id, page=page)


async def create(
    session: AsyncSession, *, scope: ProjectScope, name: str, parent_id: int | None = None
) -> FolderRow:
    """Add a folder (under `parent_id`, a folder of the project, or at the root); a sibling
    with the name is a Conflict. Core statements built once, not the ORM's unit of work:
    a folder create is a write integrations make one after another (bench/README.md)."""
    project_id = scope.require(Capability.FOLDERS_WRITE).project_id
    name = check_name(name)
    conn = await session.connection()
    if parent_id is not None:
        found = await conn.execute(_IN_PROJECT, {"project_id": project_id, "folder_id": parent_id})
        if found.first() is None:
            raise _not_in(project_id, parent_id)
    row = FolderRow(0, project_id, parent_id, parent_id or 0, name, utcnow())
    values = row._asdict()
    del values["id"]
    # The name check and the insert in one statement (on PostgreSQL one round trip).
    made = (await conn.execute(_INSERT_IF_FREE, values)).first()
    if made is None:
        taken = await conn.scalar(
            _TAKEN, {"project_id": project_id, "parent_key": row.parent_key, "name": name}
        )
        where = f"folder {parent_id}" if parent_id else "the project root"
        raise Conflict(f"A folder named '{name}' already exists in {where} (id {taken}).")
    folder = row._replace(id=made[0])
    events.emit(
        session,
        events.FolderCreated(
            project_id=project_id,
            folder_id=folder.id,
            details={"name": name, "parentId": parent_id},
        ),
    )
    return folder


_TAKEN = select(_FOLDERS.c.id).where(
    _FOLDERS.c.project_id == bindparam("project_id"),
    _FOLDERS.c.parent_key == bindparam("parent_key"),
    _FOLDERS.c.name == bindparam("name"),
)
_NEW_COLUMNS = [c for c in _FOLDERS.columns if c.key != "id"]
#: A new folder's row unless a sibling has its name; parameters: every column but the id.
_INSERT_IF_FREE = (
    insert(_FOLDERS)
    .from_select(
        [c.key for c in _NEW_COLUMNS],
        select(*(bindparam(c.key, type_=c.type) for c in _NEW_COLUMNS)).where(~_TAKEN.exists()),
    )
    .returning(_FOLDERS.c.id)
)


async def rename(
    session: AsyncSession, *, scope: ProjectScope, folder_id: int, name: str
) -> Folder:
    """Rename a folder; a sibling with the new name is a Conflict. Its own name again
    changes nothing and reports nothing."""
    scope.require(Capability.FOLDERS_WRITE)
    folder = await get(session, scope=scope, folder_id=folder_id)
    name = check_name(name)
    if name == folder.name:
        return folder
    taken = await session.scalar(
        select(Folder.id).where(
            Folder.project_id == scope.project_id,
            Folder.parent_key == folder.parent_key,
            Folder.name == name,
            Folder.id != folder_id,
        )
    )
    if taken is not None:
        raise Conflict(f"A folder named '{name}' already exists next to it (id {taken}).")
    events.emit(
        session,
        events.FolderRenamed(
            project_id=scope.project_id,
            folder_id=folder_id,
            details={"name": name, "from": folder.name},
        ),
    )
    folder.name = name
    await session.flush()
    return folder


async def delete(session: AsyncSession, *, scope: ProjectScope, folder_id: int) -> None:
    """Delete an empty folder; one that still holds documents or folders is a Conflict."""
    scope.require(Capability.FOLDERS_WRITE)
    folder = await get(session, scope=scope, folder_id=folder_id)
    # Locked before looking inside (PostgreSQL): a document restored into it, or filed or
    # moved into it (their foreign-key checks), either waits for this deletion or is seen.
    locked = select(Folder.id).where(Folder.id == folder_id).with_for_update()
    if await session.scalar(locked) is None:  # a concurrent deletion got there first
        raise NotFound(f"Folder {folder_id} not found in project {scope.project_id}.")
    if await session.scalar(select(exists().where(Folder.parent_id == folder_id))):
        raise Conflict(f"Folder {folder_id} still holds folders; delete or move them first.")
    if await session.scalar(select(exists().where(Document.folder_id == folder_id, LIVE))):
        raise Conflict(f"Folder {folder_id} still holds documents; delete or move them first.")
    await holds.refuse_if_held(
        session,
        project_id=scope.project_id,
        what=f"folder {folder_id}",
        folder_id=folder_id,
        details={"folderId": folder_id},
    )
    # Trashed documents of the folder are restored, if ever, to the project root.
    await session.execute(
        update(Document).where(Document.folder_id == folder_id).values(folder_id=None)
    )
    # By its id, not the loaded entity: a concurrent DELETE that got there first leaves
    # nothing here (the ORM would only warn), so one deletion is reported once.
    gone = await session.execute(sql_delete(Folder).where(Folder.id == folder_id))
    if gone.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(f"Folder {folder_id} not found in project {scope.project_id}.")
    session.expunge(folder)
    events.emit(session, events.FolderDeleted(project_id=scope.project_id, folder_id=folder_id))
