"""The search page: the header's search box asks it; the same domain call, with the same
access rules, as `GET /api/v1/search` (api/v1/search.py)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from casefolio.api.deps import SessionDep
from casefolio.api.ids import query_id
from casefolio.api.pagination import CURSOR_PATTERN
from casefolio.domain import access
from casefolio.domain.errors import Invalid
from casefolio.search import query, service
from casefolio.web.deps import WebRoute, WebUser
from casefolio.web.http import render

router = APIRouter(include_in_schema=False, route_class=WebRoute)


@router.get("/search")
async def search_page(
    request: Request,
    me: WebUser,
    session: SessionDep,
    # No length limit here: the domain refuses a long query with a readable message.
    q: str = "",
    project_id: Annotated[int | None, query_id("projectId")] = None,
    cursor: Annotated[str | None, Query(max_length=512, pattern=CURSOR_PATTERN)] = None,
) -> Response:
    context: dict[str, object] = dict(
        search_q=q, syntax=query, hits=[], next_url=None, search_project=None, error=None
    )
    if not q.strip():
        return render(request, "search.html", 200, **context)
    try:
        page = await service.search(
            session, me.principal, service.Search(q=q, project_id=project_id, cursor=cursor)
        )
    except Invalid as exc:
        # The domain's message on the search page itself, the query left in the box to mend.
        context["error"] = exc.message
        return render(request, "search.html", 400, **context)
    if project_id is not None:
        # Only its name, for the header's "this project only" box: search() checked access.
        _, context["search_project"] = await access.scoped_project(
            session, me.principal, project_id
        )
    if page.next_cursor:
        wanted = {"q": q, "projectId": project_id, "cursor": page.next_cursor}
        context["next_url"] = "/search?" + urlencode({k: v for k, v in wanted.items() if v})
    context["hits"] = page.items
    return render(request, "search.html", 200, **context)
