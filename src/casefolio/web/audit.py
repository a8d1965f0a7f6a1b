"""The audit trail, read-only, with the filters and keyset paging of `/api/v1/audit`, through
the same domain call: operators see all of it, a project admin their projects' entries."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.api.deps import SessionDep
from casefolio.api.ids import optional_id
from casefolio.api.v1.documents import parse_after_date
from casefolio.db.models import AuditEntry
from casefolio.domain import users
from casefolio.domain.errors import Forbidden, Invalid, NotFound
from casefolio.domain.pages import MAX_LIMIT, request_after
from casefolio.outbound import audit
from casefolio.web.deps import WebRoute, WebUser
from casefolio.web.http import render

router = APIRouter(include_in_schema=False, route_class=WebRoute)
PER_PAGE = 50
FILTERS = ("project", "user", "action", "targetType", "targetId", "after", "before")
_NUMBERS = {"project": "Project", "user": "User", "targetId": "Target id"}


def _number(sent: dict[str, str], name: str) -> int | None:
    return optional_id(sent[name], field=name, label=_NUMBERS[name])


def _filter(sent: dict[str, str]) -> audit.AuditFilter:
    """The filters as the form sends them (empty fields: no filter)."""
    for name, length in (("action", 60), ("targetType", 30), ("after", 40), ("before", 40)):
        if len(sent[name]) > length:
            raise Invalid(f"{name} is at most {length} characters long.")
    return audit.AuditFilter(
        project_id=_number(sent, "project"),
        user_id=_number(sent, "user"),
        action=sent["action"] or None,
        target_type=sent["targetType"] or None,
        target_id=_number(sent, "targetId"),
        after=parse_after_date(sent["after"], "after") if sent["after"] else None,
        before=parse_after_date(sent["before"], "before") if sent["before"] else None,
    )


async def _names(session: AsyncSession, rows: list[AuditEntry]) -> dict[int, str]:
    names: dict[int, str] = {}
    for user_id in {r.actor_user_id for r in rows if r.actor_user_id is not None}:
        try:
            names[user_id] = (await users.get(session, user_id=user_id)).name
        except NotFound:
            continue
    return names


@router.get("/admin/audit")
async def audit_page(
    request: Request,
    me: WebUser,
    session: SessionDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = PER_PAGE,
) -> Response:
    sent = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    kept: dict[str, Any] = {k: v for k, v in sent.items() if v}
    if limit != PER_PAGE:
        kept["limit"] = limit
    try:
        where = _filter(sent)
        page = await audit.list_page(
            session,
            who=me.principal,
            where=where,
            page=request_after(cursor, limit),
        )
    except (Invalid, Forbidden) as exc:
        status = 403 if isinstance(exc, Forbidden) else 400
        return render(
            request, "admin_audit.html", status, rows=[], sent=sent, kept=kept, error=exc.message
        )
    rows: list[dict[str, Any]] = [
        {"row": r, "details": json.dumps(r.details, sort_keys=True) if r.details else ""}
        for r in page.items
    ]
    return render(
        request,
        "admin_audit.html",
        rows=rows,
        names=await _names(session, page.items),
        sent=sent,
        kept=kept,
        next_cursor=page.next_cursor,
        error=None,
    )
