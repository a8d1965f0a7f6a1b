"""Legal holds: while a hold covers a document, nothing may destroy it.

A hold is placed on a project, a folder or a document. Several holds may cover one
document; it is free only once every hold covering it is released ("a hold is not a
boolean"). A project hold covers every document of the project, including those filed
later. A folder hold covers the documents in the folder and its sub-folders, whenever they
arrived; and because holds follow documents, not paths, a document moved out of a held
folder stays covered: the move writes a `HoldDocument` row for it (`record_move`), so the
rule "in the folder now, or recorded as having been" needs no history beyond moves.

`covering()` is the one answer to "which holds cover these documents / this folder / this
project"; `refuse_if_held()` turns it into the 409 every delete path raises (documents,
versions, folders, on /api/v1, /api/v3 and the web pages), and the background sweeps (the
trash's purge, retention) skip what `covered_documents()`, its per-document form, names.
Holds are checked in the deleting transaction; a hold committed concurrently with a
document's delete may miss it, but that delete only moves the document to the trash, and
the purge checks again, taking its turn with holds being placed (`lock_against_new_holds`).
`casefolio gc` removes only bytes no version row refers to, and a held document, a trashed
one and a trashed version all keep their version rows, so gc cannot reach their bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database
from casefolio.db.models import Document, Folder, Hold, HoldDocument, Project
from casefolio.db.types import utcnow
from casefolio.domain import events, text
from casefolio.domain.access import ProjectScope
from casefolio.domain.errors import Held, Invalid
from casefolio.domain.pages import Page, PageRequest, fetch_page
from casefolio.domain.roles import Capability

HoldScope = Literal["project", "folder", "document"]
HOLD_SCOPES: tuple[HoldScope, ...] = ("project", "folder", "document")
MAX_NAME = text.MAX_NAME
MAX_REASON = 2000


@dataclass(frozen=True)
class NewHold:
    name: str
    reason: str
    scope: str
    target_id: int | None = None


def _text(value: str, field: str, limit: int) -> str:
    # A reason may run over several lines; a name is one.
    return text.stripped_name(
        value, limit=limit, what=f"A hold's {field}", field=field, one_line=field == "name"
    )


async def _check_target(session: AsyncSession, scope: ProjectScope, new: NewHold) -> int | None:
    if new.scope not in HOLD_SCOPES:
        raise Invalid(
            f"A hold's scope is one of {', '.join(HOLD_SCOPES)}.",
            [{"field": "scope", "message": "unknown scope"}],
        )
    if new.scope == "project":
        if new.target_id is not None:
            raise Invalid(
                "A project hold takes no targetId.",
                [{"field": "targetId", "message": "not for a project hold"}],
            )
        return None
    if new.target_id is None:
        raise Invalid(
            f"A {new.scope} hold needs a targetId.",
            [{"field": "targetId", "message": "missing"}],
        )
    # A trashed document may be held: a hold stops its purge.
    await scope.get(session, Folder if new.scope == "folder" else Document, new.target_id)
    return new.target_id


async def create(session: AsyncSession, *, scope: ProjectScope, new: NewHold) -> Hold:
    """Place a hold; it covers what it names from this moment on."""
    project_id = scope.require(Capability.HOLDS_MANAGE).project_id
    # Takes its turn with the purge (`lock_against_new_holds`): one that had read the holds
    # before this one committed purged the document this hold was placed on.
    await session.execute(
        select(Project.id).where(Project.id == project_id).with_for_update(key_share=True)
    )
    hold = Hold(
        project_id=project_id,
        name=_text(new.name, "name", MAX_NAME),
        reason=_text(new.reason, "reason", MAX_REASON),
        scope=new.scope,
        target_id=await _check_target(session, scope, new),
        created_by=scope.user_id,
        created_at=utcnow(),
    )
    session.add(hold)
    await session.flush()
    events.emit(session, _hold_event(events.HoldCreated, hold))
    return hold


def _hold_event(kind: type[events.DomainEvent], hold: Hold, **details: str) -> events.DomainEvent:
    """A hold's creation or release, naming what it covers the same way for both."""
    return kind(
        project_id=hold.project_id,
        subject_id=hold.id,
        document_id=hold.target_id if hold.scope == "document" else None,
        folder_id=hold.target_id if hold.scope == "folder" else None,
        details={"name": hold.name, "scope": hold.scope, "targetId": hold.target_id} | details,
    )


async def get(session: AsyncSession, *, scope: ProjectScope, hold_id: int) -> Hold:
    return await scope.require(Capability.HOLDS_MANAGE).get(session, Hold, hold_id)


async def list_page(
    session: AsyncSession, *, scope: ProjectScope, page: PageRequest, active: bool | None = None
) -> Page[Hold]:
    """The project's holds by id; `active` True/False: only unreleased/released ones."""
    scope.require(Capability.HOLDS_MANAGE)
    stmt = select(Hold).where(Hold.project_id == scope.project_id)
    if active is not None:
        stmt = stmt.where(Hold.released_at.is_(None) if active else Hold.released_at.isnot(None))
    return await fetch_page(session, stmt, key=[Hold.id], page=page, key_of=lambda h: (h.id,))


async def release(session: AsyncSession, *, scope: ProjectScope, hold_id: int, reason: str) -> Hold:
    """Release a hold (the reason is required and kept); what it covered is free unless
    another hold still covers it. Releasing a released hold changes nothing (idempotent)."""
    hold = await get(session, scope=scope, hold_id=hold_id)
    reason = _text(reason, "reason", MAX_REASON)
    # Locked and read again (PostgreSQL's writers overlap): of two releases at once, the
    # second finds the hold released and changes nothing.
    await session.refresh(hold, with_for_update=True)
    if hold.released_at is not None:
        return hold
    hold.released_at = utcnow()
    hold.released_by = scope.user_id
    hold.release_reason = reason
    await session.flush()
    events.emit(session, _hold_event(events.HoldReleased, hold, reason=reason))
    return hold


# ---- coverage ------------------------------------------------------------------------------


async def _active(session: AsyncSession, project_id: int) -> list[Hold]:
    stmt = select(Hold).where(Hold.project_id == project_id, Hold.released_at.is_(None))
    return list(await session.scalars(stmt.order_by(Hold.id)))


async def _parents(session: AsyncSession, project_id: int) -> dict[int, int | None]:
    rows = await session.execute(
        select(Folder.id, Folder.parent_id).where(Folder.project_id == project_id)
    )
    return {folder_id: parent_id for folder_id, parent_id in rows}


def _lineage(parents: dict[int, int | None], folder_id: int | None) -> set[int]:
    """The folder and its ancestors (empty for the project root)."""
    found: set[int] = set()
    while folder_id is not None and folder_id not in found:
        found.add(folder_id)
        folder_id = parents.get(folder_id)
    return found


def _subtree(parents: dict[int, int | None], folder_id: int) -> set[int]:
    return {f for f in parents if folder_id in _lineage(parents, f)}


async def lock_against_new_holds(session: AsyncSession, project_ids: Select[Any]) -> None:
    """PostgreSQL: keep holds from being placed on these projects (a select of their ids)
    until this transaction ends, and wait for those being placed: a sweep that destroys
    what no hold covers (the purge) reads the holds only after this. FOR SHARE, which
    uploads' foreign key checks (FOR KEY SHARE) do not wait for; SQLite's writers take
    turns already."""
    await session.execute(
        select(Project.id)
        .where(Project.id.in_(project_ids))
        .order_by(Project.id)
        .with_for_update(read=True)
    )


async def covering(
    session: AsyncSession,
    *,
    project_id: int,
    document_ids: Iterable[int] = (),
    folder_id: int | None = None,
    whole_project: bool = False,
) -> list[Hold]:
    """The active holds of the project that cover any of these documents (trashed ones
    included), the folder (a hold on it, an ancestor or a descendant, or on a document in
    it), or, with `whole_project`, anything in the project. Oldest first."""
    holds = await _active(session, project_id)
    if not holds or whole_project:
        return holds
    wanted = set(document_ids)
    near: set[int] = set()
    if folder_id is not None:
        parents = await _parents(session, project_id)
        inside = _subtree(parents, folder_id) | {folder_id}
        near = inside | _lineage(parents, folder_id)
        wanted |= set(
            await session.scalars(
                select(Document.id).where(
                    Document.project_id == project_id, Document.folder_id.in_(inside)
                )
            )
        )
    by_document = await _by_document(session, project_id, holds, wanted)
    hit = {h.id for found in by_document.values() for h in found}
    return [
        h
        for h in holds
        if h.id in hit
        # A folder is covered by a hold on the project, on it, an ancestor or a descendant.
        or (folder_id is not None and h.scope == "project")
        or (h.scope == "folder" and h.target_id in near)
    ]


async def covered_documents(
    session: AsyncSession, *, project_id: int, document_ids: Iterable[int]
) -> dict[int, list[Hold]]:
    """`covering()` per document: each of these documents that a hold covers, with its
    holds (for sweeps that skip held documents and go on with the rest)."""
    holds = await _active(session, project_id)
    wanted = set(document_ids)
    if not holds or not wanted:
        return {}
    return await _by_document(session, project_id, holds, wanted)


async def _by_document(
    session: AsyncSession, project_id: int, holds: list[Hold], wanted: set[int]
) -> dict[int, list[Hold]]:
    if not wanted:
        return {}
    parents: dict[int, int | None] = {}
    homes: dict[int, int | None] = {}
    followed: set[tuple[int, int]] = set()
    folder_holds = [h.id for h in holds if h.scope == "folder"]
    if folder_holds:
        parents = await _parents(session, project_id)
        homes = {
            d: f
            for d, f in await session.execute(
                select(Document.id, Document.folder_id).where(
                    Document.project_id == project_id, Document.id.in_(wanted)
                )
            )
        }
        followed = {
            (h, d)
            for h, d in await session.execute(
                select(HoldDocument.hold_id, HoldDocument.document_id).where(
                    HoldDocument.hold_id.in_(folder_holds), HoldDocument.document_id.in_(wanted)
                )
            )
        }
    found: dict[int, list[Hold]] = {}
    for document_id in sorted(wanted):
        lineage = _lineage(parents, homes.get(document_id))
        for hold in holds:
            if (
                hold.scope == "project"
                or (hold.scope == "document" and hold.target_id == document_id)
                or (
                    hold.scope == "folder"
                    and (hold.target_id in lineage or (hold.id, document_id) in followed)
                )
            ):
                found.setdefault(document_id, []).append(hold)
    return found


def _names(holds: Sequence[Hold]) -> str:
    return ", ".join(f"hold {h.id} ('{h.name}')" for h in holds)


async def refuse_if_held(
    session: AsyncSession,
    *,
    project_id: int,
    what: str,
    document_ids: Iterable[int] = (),
    folder_id: int | None = None,
    whole_project: bool = False,
    details: dict[str, object] | None = None,
) -> None:
    """Raise Held (a 409 naming the holds) if any active hold covers what a deletion of
    `what` ("document 5") would destroy; the refusal is audited by whoever owns the
    transaction (`record_refusal`)."""
    held = await covering(
        session,
        project_id=project_id,
        document_ids=document_ids,
        folder_id=folder_id,
        whole_project=whole_project,
    )
    if not held:
        return
    ids = [h.id for h in held]
    refusal = events.HoldRefused(
        project_id=project_id, details={"what": what, "holds": ids, **(details or {})}
    )
    raise Held(
        f"{what.capitalize()} is under legal hold ({_names(held)}); it cannot be deleted "
        "until every hold covering it is released.",
        ids,
        refusal,
    )


async def record_move(session: AsyncSession, *, document: Document, to_folder: int | None) -> None:
    """Before `document` leaves its folder for `to_folder`: every folder hold that covers
    it by where it is now, and would not by where it goes, keeps covering it by a row."""
    holds = [h for h in await _active(session, document.project_id) if h.scope == "folder"]
    if not holds or document.folder_id is None:
        return
    parents = await _parents(session, document.project_id)
    here, there = _lineage(parents, document.folder_id), _lineage(parents, to_folder)
    for hold in holds:
        if hold.target_id in here and hold.target_id not in there:
            await session.merge(HoldDocument(hold_id=hold.id, document_id=document.id))


async def record_refusal(db: Database, refused: Held) -> None:
    """Audit a deletion that holds refused, in a transaction of its own (the refused one
    rolled back with everything it had emitted)."""
    if isinstance(refused.refusal, events.DomainEvent):
        async with db.write() as session:
            events.emit(session, refused.refusal)
