"""The audit trail, read-only: operators see all of it, project admins their projects'."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.ids import query_id
from casefolio.api.pagination import ListingDep
from casefolio.api.v1.documents import AFTER_DATE_PATTERN, parse_after_date
from casefolio.api.v1.routing import v1_router
from casefolio.outbound import audit

router = v1_router("audit")

Text = Annotated[str | None, Query(max_length=60)]


def _date_query(bound: str) -> Any:
    """A date bound of the trail: documented, as the documents' afterDate, with its pattern."""
    return Query(
        max_length=40,
        description=f"RFC 3339 or YYYY-MM-DD, {bound}",
        json_schema_extra={"pattern": AFTER_DATE_PATTERN},
    )


@router.get(
    "/audit",
    summary="Read the audit trail, oldest first (operators; project admins with projectId)",
    response_model=list[dict[str, Any]],
)
async def list_audit(
    session: SessionDep,
    who: PrincipalDep,
    listing: ListingDep,
    project_id: Annotated[int | None, query_id("projectId")] = None,
    user_id: Annotated[int | None, query_id("userId")] = None,
    action: Text = None,
    target_type: Annotated[str | None, Query(alias="targetType", max_length=30)] = None,
    target_id: Annotated[int | None, query_id("targetId")] = None,
    after: Annotated[str | None, _date_query("inclusive")] = None,
    before: Annotated[str | None, _date_query("exclusive")] = None,
) -> list[dict[str, Any]]:
    where = audit.AuditFilter(
        project_id=project_id,
        user_id=user_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        after=parse_after_date(after, "after") if after else None,
        before=parse_after_date(before, "before") if before else None,
    )
    page = await audit.list_page(session, who=who, where=where, page=listing.page)
    return [audit.document_of(row) for row in listing.items(page)]
