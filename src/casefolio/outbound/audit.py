"""The audit trail: audited reads, the list, verification of the chain, export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Document, DocumentVersion
from casefolio.domain import access, events
from casefolio.domain.errors import Forbidden
from casefolio.domain.pages import Page, PageRequest, encode_cursor
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.outbound.chain import GENESIS, entry_document, next_hash

_VERIFY_CHUNK = 1000


async def record_download(db: Database, version: DocumentVersion, *, whole_version: bool) -> None:
    """Audit that the caller received a version's bytes, in a transaction of its own (the
    download itself only read)."""
    kind = events.VersionDownloaded if whole_version else events.ContentDownloaded
    async with db.write() as session:
        project_id = await session.scalar(
            select(Document.project_id).where(Document.id == version.document_id)
        )
        events.emit(
            session,
            kind(
                project_id=project_id,
                document_id=version.document_id,
                version_id=version.id,
                details={"number": version.number, "sha256": version.sha256},
            ),
        )


def document_of(row: AuditEntry) -> dict[str, Any]:
    """An entry as the API and the export show it (and as its hash covers it), plus its hash."""
    return {**entry_document(**_columns(row)), "hash": row.hash}


def _columns(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at,
        "actor_kind": row.actor_kind,
        "actor_user_id": row.actor_user_id,
        "actor_token_id": row.actor_token_id,
        "client": row.client,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "project_id": row.project_id,
        "details": row.details,
    }


@dataclass(frozen=True)
class AuditFilter:
    project_id: int | None = None
    user_id: int | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: int | None = None
    after: datetime | None = None
    before: datetime | None = None


def _filtered(stmt: Select[AuditEntry], where: AuditFilter) -> Select[AuditEntry]:
    if where.project_id is not None:
        stmt = stmt.where(AuditEntry.project_id == where.project_id)
    if where.user_id is not None:
        stmt = stmt.where(AuditEntry.actor_user_id == where.user_id)
    if where.action is not None:
        stmt = stmt.where(AuditEntry.action == where.action)
    if where.target_type is not None:
        stmt = stmt.where(AuditEntry.target_type == where.target_type)
    if where.target_id is not None:
        stmt = stmt.where(AuditEntry.target_id == where.target_id)
    if where.after is not None:
        stmt = stmt.where(AuditEntry.at >= where.after)
    if where.before is not None:
        stmt = stmt.where(AuditEntry.at < where.before)
    return stmt


async def list_page(
    session: AsyncSession, *, who: Principal, where: AuditFilter, page: PageRequest
) -> Page[AuditEntry]:
    """Entries, oldest first. Operators see all; a project admin the entries of projects
    they administer, and must name one."""
    if not who.is_operator:
        if where.project_id is None:
            raise Forbidden(
                "Only operators can read the whole audit trail; "
                "a project admin passes projectId=<a project they administer>."
            )
        await access.scope(session, who, where.project_id, Capability.SETTINGS_MANAGE)
    stmt = _filtered(select(AuditEntry), where)
    if page.after is not None:
        stmt = stmt.where(AuditEntry.id > page.after[0])
    rows = list(await session.scalars(stmt.order_by(AuditEntry.id).limit(page.limit + 1)))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(rows, encode_cursor((rows[-1].id,)) if more and rows else None)


@dataclass(frozen=True)
class Verdict:
    checked: int
    first_bad_id: int | None = None
    reason: str = ""


async def verify(session: AsyncSession) -> Verdict:
    """Walk the chain in id order; return the first entry whose hash does not match (an
    edited entry, or the one after a removed or inserted entry)."""
    previous_hash, previous_id, checked = GENESIS, 0, 0
    while True:
        rows = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.id > previous_id)
                .order_by(AuditEntry.id)
                .limit(_VERIFY_CHUNK)
            )
        )
        if not rows:
            return Verdict(checked)
        for row in rows:
            if row.id != previous_id + 1:
                return Verdict(checked, row.id, f"entries {previous_id + 1}…{row.id - 1} missing")
            expected = next_hash(previous_hash, entry_document(**_columns(row)))
            if row.hash != expected:
                return Verdict(checked, row.id, "its hash does not match its content")
            previous_hash, previous_id = row.hash, row.id
            checked += 1
        session.expunge_all()


async def export(
    session: AsyncSession, *, since: datetime | None, project_id: int | None
) -> AsyncIterator[dict[str, Any]]:
    """Every entry (from `since`, of one project), oldest first, as documents."""
    where = AuditFilter(project_id=project_id, after=since)
    last = 0
    while True:
        rows = list(
            await session.scalars(
                _filtered(select(AuditEntry), where)
                .where(AuditEntry.id > last)
                .order_by(AuditEntry.id)
                .limit(_VERIFY_CHUNK)
            )
        )
        if not rows:
            return
        for row in rows:
            yield document_of(row)
        last = rows[-1].id
        session.expunge_all()
