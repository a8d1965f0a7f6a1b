"""How far extraction has got, for the versions the caller can read: counts by status, and
the failures with their reasons (GET /api/v1/search/status)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import VersionText
from casefolio.domain import access
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.search.service import DOCUMENTS, VERSIONS, searchable

MAX_FAILURES = 100
_TEXTS = cast(Table, VersionText.__table__)


@dataclass(frozen=True)
class Failure:
    document_id: int
    version_id: int
    file_name: str
    reason: str
    extracted_at: datetime | None


@dataclass(frozen=True)
class Summary:
    counts: dict[str, int]
    failures: list[Failure]


async def summary(
    session: AsyncSession, who: Principal, *, project_id: int | None = None
) -> Summary:
    if project_id is not None:
        await access.scope(session, who, project_id, Capability.DOCUMENTS_READ)

    def scoped(statement: Select[Any]) -> Select[Any]:
        statement = searchable(statement, _TEXTS.c.version_id, who, all_versions=True)
        if project_id is not None:
            statement = statement.where(DOCUMENTS.c.project_id == project_id)
        return statement

    counts = scoped(select(_TEXTS.c.status, func.count()).select_from(_TEXTS)).group_by(
        _TEXTS.c.status
    )
    failed = (
        scoped(
            select(
                VERSIONS.c.document_id,
                _TEXTS.c.version_id,
                VERSIONS.c.file_name,
                _TEXTS.c.reason,
                _TEXTS.c.extracted_at,
            ).select_from(_TEXTS)
        )
        .where(_TEXTS.c.status == "failed")
        .order_by(_TEXTS.c.version_id.desc())
        .limit(MAX_FAILURES)
    )
    return Summary(
        {s: int(n) for s, n in await session.execute(counts)},
        [Failure(*row) for row in await session.execute(failed)],
    )
