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
from casefolio.domain.errors import Forbidden, Invalid
from casefolio.domain.pages import Page, PageRequest, encode_cursor
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.outbound import sealing
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
    """An entry as the API and the export show it (and as its hash covers it), plus its hash
    (None until it is sealed)."""
    return {**entry_document(**sealing.columns(row)), "hash": row.hash}


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
    #: Entries after the sealed chain, not sealed yet (their transactions were not all
    #: over when it was sealed).
    unsealed: int = 0


async def verify(session: AsyncSession) -> Verdict:
    """Walk the chain in its order, (xid, id); return the first entry whose hash does not
    match (an edited entry, or the one after a removed or inserted entry), or that is not
    sealed although entries after it are."""
    previous_hash, position, checked = GENESIS, sealing.BEFORE_ALL, 0
    # The first of a run of unsealed entries, and where the walk stood before it: a sealer
    # may have sealed the run since it was read, so it is read again once before it counts.
    unsealed: tuple[AuditEntry, tuple[int, int], str, int] | None = None
    run, read_again = 0, None
    while True:
        try:
            rows = await _entries_after(session, select(AuditEntry), position, _VERIFY_CHUNK)
        except _UNREADABLE:
            # One of them holds what casefolio never writes (its details not JSON, its time
            # not a time): the walk goes on one entry at a time up to it.
            session.expunge_all()
            rows = await _readable_prefix(session, position)
            if not rows:
                bad = await _entries_after(session, select(AuditEntry.id), position, 1)
                return Verdict(
                    checked, bad[0], "it cannot be read: a column holds what casefolio never writes"
                )
        if not rows:
            return Verdict(checked, unsealed=run)
        for row in rows:
            if row.hash is None:
                unsealed = unsealed or (row, position, previous_hash, checked)
                run += 1
            elif unsealed is not None:
                first, position, previous_hash, checked = unsealed
                if read_again == first.id:
                    return Verdict(checked, first.id, "it is not sealed, though later entries are")
                read_again, unsealed, run = first.id, None, 0
                break
            else:
                expected = next_hash(previous_hash, entry_document(**sealing.columns(row)))
                if row.hash != expected:
                    return Verdict(checked, row.id, "its hash does not match its content")
                previous_hash = row.hash
                checked += 1
            position = (row.xid, row.id)
        session.expunge_all()


#: What reading a row raises when a column holds what casefolio never writes (an edit in
#: the database itself): JSON that is not, a time that is not one.
_UNREADABLE = (ValueError, TypeError)


async def _entries_after(
    session: AsyncSession, query: Select[Any], position: tuple[int, int], limit: int
) -> list[Any]:
    """Up to `limit` rows of `query` after `position`, in the chain's order."""
    return list(
        await session.scalars(
            query.where(sealing.past(session, AuditEntry.xid, AuditEntry.id, position))
            .order_by(AuditEntry.xid, AuditEntry.id)
            .limit(limit)
        )
    )


async def _readable_prefix(session: AsyncSession, position: tuple[int, int]) -> list[AuditEntry]:
    """The entries after `position` up to the first that cannot be read (without it)."""
    ids = await _entries_after(session, select(AuditEntry.id), position, _VERIFY_CHUNK)
    readable: list[AuditEntry] = []
    for entry_id in ids:
        try:
            readable.append(await session.get_one(AuditEntry, entry_id))
        except _UNREADABLE:
            break
    return readable


async def export(
    session: AsyncSession, *, since: datetime | None, project_id: int | None
) -> AsyncIterator[dict[str, Any]]:
    """Every entry (from `since`, of one project) as documents, in the chain's order (so a
    whole export can be verified line by line)."""
    where = AuditFilter(project_id=project_id, after=since)
    position = sealing.BEFORE_ALL
    while True:
        try:
            rows = await _entries_after(
                session, _filtered(select(AuditEntry), where), position, _VERIFY_CHUNK
            )
        except _UNREADABLE as exc:
            raise Invalid(
                "An audit entry cannot be read: a column holds what casefolio never writes "
                f"({exc}); `casefolio audit verify` names it."
            ) from exc
        if not rows:
            return
        for row in rows:
            yield document_of(row)
        position = (rows[-1].xid, rows[-1].id)
        session.expunge_all()
