"""Load what the representers need, in batches, and render: a page of documents costs a
fixed number of queries whatever its size."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.api.v3 import hal, paging, representers
from casefolio.api.v3.hal import Json
from casefolio.api.v3.representers import Rights
from casefolio.db.models import Project, User
from casefolio.domain import access
from casefolio.domain.principal import Principal
from casefolio.domain.rows import DocumentData, VersionData


async def _rights(
    session: AsyncSession, who: Principal, project_ids: Iterable[int]
) -> dict[int, Rights]:
    out: dict[int, Rights] = {}
    for project_id in set(project_ids):
        role = await access.project_role(session, who, project_id)
        out[project_id] = Rights(role.capabilities if role else frozenset())
    return out


async def _projects(session: AsyncSession, ids: Iterable[int]) -> dict[int, Project]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.scalars(select(Project).where(Project.id.in_(wanted)))
    return {p.id: p for p in rows}


async def _users(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, User]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.scalars(select(User).where(User.id.in_(wanted)))
    return {u.id: u for u in rows}


async def documents(
    session: AsyncSession, who: Principal, docs: Sequence[DocumentData]
) -> list[Json]:
    """Given documents the caller may read, return them as collection elements."""
    project_ids = [d.project_id for d in docs]
    projects = await _projects(session, project_ids)
    rights = await _rights(session, who, project_ids)
    return [representers.document(d, projects[d.project_id], rights[d.project_id]) for d in docs]


async def attachments(
    session: AsyncSession, who: Principal, doc: DocumentData, versions: Sequence[VersionData]
) -> list[Json]:
    """Given a readable document and some of its versions, return them as Attachments."""
    [rights] = (await _rights(session, who, [doc.project_id])).values()
    authors = await _users(session, (v.created_by for v in versions))
    return [
        representers.attachment(v, doc, authors.get(v.created_by) if v.created_by else None, rights)
        for v in versions
    ]


async def attachment_collection(
    session: AsyncSession, who: Principal, doc: DocumentData, versions: Sequence[VersionData]
) -> Json:
    elements = await attachments(session, who, doc, versions)
    return paging.unpaginated_collection(hal.document_attachments(doc.id), elements)


async def document(
    session: AsyncSession, who: Principal, doc: DocumentData, versions: Sequence[VersionData]
) -> Json:
    """Given a readable document and its versions, return the full Document with
    `_embedded.project` and `_embedded.attachments`."""
    [out] = await documents(session, who, [doc])
    project = await session.get_one(Project, doc.project_id)
    out["_embedded"] = {
        "project": representers.project(project),
        "attachments": await attachment_collection(session, who, doc, versions),
    }
    return out


def projects(rows: Sequence[Project]) -> list[Json]:
    return [representers.project(p) for p in rows]


async def unclaimed_attachment(session: AsyncSession, who: Principal, version: VersionData) -> Json:
    """Given the caller's own upload that no document holds yet, return the Attachment with
    its author embedded and a null container."""
    author = await session.get(User, version.created_by) if version.created_by else None
    out = representers.attachment(version, None, author, Rights(frozenset()))
    if author is not None:
        out["_embedded"] = {"author": representers.user(author, full=True)}
    return out


async def attachment(
    session: AsyncSession, who: Principal, doc: DocumentData, version: VersionData
) -> Json:
    """Given a readable version, return the Attachment with its author and container embedded."""
    [out] = await attachments(session, who, doc, [version])
    author = await session.get(User, version.created_by) if version.created_by else None
    [container] = await documents(session, who, [doc])
    out["_embedded"] = {"container": container}
    if author is not None:
        full = who.is_operator or who.user_id == author.id
        out["_embedded"]["author"] = representers.user(author, full=full)
    return out
