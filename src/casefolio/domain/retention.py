"""Retention rules: what happens to a project's documents once they are old enough.

A project may carry `{"keepYears": N, "then": "trash" | "review"}`, counted from a
document's last change (its updatedAt). A daily job (outbound/housekeeping.py) applies the
rules: past its period, a document of a "trash" project goes to the trash (where the
trash's own period then runs); one of a "review" project is listed as due for review
(`due()`), and nothing changes. A document a legal hold covers is never touched.
`plan()` says what would happen without changing anything (`casefolio retention report`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database
from casefolio.db.live import LIVE
from casefolio.db.models import Document, Project
from casefolio.db.types import utcnow
from casefolio.domain import access, events, holds, trash
from casefolio.domain.errors import Invalid, NotFound
from casefolio.domain.failures import passing
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability

log = logging.getLogger(__name__)
Then = Literal["trash", "review"]
MAX_YEARS = 100


@dataclass(frozen=True)
class Rule:
    keep_years: int
    then: Then

    def as_json(self) -> dict[str, Any]:
        return {"keepYears": self.keep_years, "then": self.then}


def parse(raw: Any) -> Rule | None:
    """Given a rule as stored or sent (or None), return it checked; Invalid if malformed."""
    if raw is None:
        return None
    years, then = (raw.get("keepYears"), raw.get("then")) if isinstance(raw, dict) else (None, None)
    if (
        not isinstance(years, int)
        or isinstance(years, bool)
        or not 1 <= years <= MAX_YEARS
        or then not in ("trash", "review")
        or set(raw) - {"keepYears", "then"}
    ):
        raise Invalid(
            f'A retention rule is {{"keepYears": 1 to {MAX_YEARS}, "then": "trash" or "review"}}.',
            [{"field": "retention", "message": "malformed rule"}],
        )
    return Rule(years, then)


def cutoff(now: datetime, years: int) -> datetime:
    """The instant `years` calendar years before `now` (29 February counts as the 28th)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


async def get_rule(session: AsyncSession, *, who: Principal, project_id: int) -> Rule | None:
    _, project = await access.scoped_project(session, who, project_id)
    return parse(project.retention)


async def set_rule(
    session: AsyncSession, *, who: Principal, project_id: int, rule: Rule | None
) -> Rule | None:
    """Set (None: remove) the project's rule; Project Admins and operators."""
    _, project = await access.scoped_project(session, who, project_id, Capability.SETTINGS_MANAGE)
    project.retention = rule.as_json() if rule else None
    project.updated_at = utcnow()
    await session.flush()
    events.emit(
        session,
        events.ProjectUpdated(
            project_id=project_id,
            details={"changed": ["retention"], "retention": project.retention},
        ),
    )
    return rule


@dataclass(frozen=True)
class Planned:
    project_id: int
    document_id: int
    title: str
    updated_at: datetime
    action: Literal["trash", "review", "held"]
    holds: tuple[int, ...] = ()


async def plan(
    session: AsyncSession, *, now: datetime, project_id: int | None = None
) -> list[Planned]:
    """What the rules would do at `now`: each live document past its project's period,
    with its action ("held": a hold keeps it as it is), by project and document id."""
    stmt = select(Project.id, Project.retention).where(Project.retention.isnot(None))
    if project_id is not None:
        if await session.get(Project, project_id) is None:
            raise NotFound(f"Project {project_id} not found.")
        stmt = stmt.where(Project.id == project_id)
    found: list[Planned] = []
    for pid, raw in (await session.execute(stmt.order_by(Project.id))).all():
        rule = parse(raw)
        if rule is None:
            continue
        rows = (
            await session.execute(
                select(Document.id, Document.title, Document.updated_at)
                .where(
                    Document.project_id == pid,
                    LIVE,
                    Document.updated_at < cutoff(now, rule.keep_years),
                )
                .order_by(Document.id)
            )
        ).all()
        held = await holds.covered_documents(
            session, project_id=pid, document_ids=[r.id for r in rows]
        )
        for row in rows:
            covering = tuple(h.id for h in held.get(row.id, ()))
            action: Literal["trash", "review", "held"] = "held" if covering else rule.then
            found.append(Planned(pid, row.id, row.title, row.updated_at, action, covering))
    return found


async def due(
    session: AsyncSession, *, who: Principal, project_id: int, now: datetime | None = None
) -> list[Planned]:
    """The project's documents past retention under a "review" rule (held ones included,
    marked "held"), for the people who decide."""
    await access.scope(session, who, project_id, Capability.DOCUMENTS_DELETE)
    return await plan(session, now=now or utcnow(), project_id=project_id)


async def apply(db: Database, *, now: datetime) -> list[Planned]:
    """Apply every rule at `now`: move the documents of "trash" projects past their period
    to the trash (audited, and `document.deleted` in the change feed, as a DELETE would);
    return what was trashed. A document the database refuses to move stays as it is, and
    the others go."""
    try:
        async with db.write() as session:
            return await _trash(session, await plan(session, now=now), now)
    except Exception as exc:
        if passing(exc):
            raise
        # Left as it is, the job would fail again every day, for every project.
        log.error("retention failed (%s); moving each document apart", exc)
    async with db.read() as session:
        planned = await plan(session, now=now)
    trashed: list[Planned] = []
    for one in planned:
        if one.action != "trash":
            continue
        try:
            async with db.write() as session:
                # Looked at again: a hold placed since keeps it.
                held = await holds.covered_documents(
                    session, project_id=one.project_id, document_ids=[one.document_id]
                )
                if not held:
                    trashed += await _trash(session, [one], now)
        except Exception as exc:
            if passing(exc):
                raise
            log.exception("retention: document %d cannot be moved to the trash", one.document_id)
    return trashed


async def _trash(session: AsyncSession, planned: list[Planned], now: datetime) -> list[Planned]:
    trashed: list[Planned] = []
    for one in planned:
        if one.action != "trash":
            continue
        # Only a document still live and unchanged since it was planned: another process's
        # job may have taken it meanwhile (PostgreSQL re-checks the condition once that
        # one's transaction ends), or a change made it recent again.
        taken = await session.execute(
            update(Document)
            .where(Document.id == one.document_id, LIVE, Document.updated_at == one.updated_at)
            .values(trashed_at=now)
            .returning(Document.folder_id)
        )
        row = taken.first()
        if row is None:
            continue
        trashed.append(one)
        events.emit(
            session,
            trash.trashed_event(one.project_id, one.document_id, row.folder_id, retention=True),
        )
    await session.flush()
    return trashed
