"""The root resource, users and projects: what OpenProject clients read before documents."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.errors import V3_NOT_FOUND
from casefolio.api.routing import dialect_router
from casefolio.api.v3 import hal, paging, queries, render, representers
from casefolio.api.v3.error_responses import COMMON_V3_ERRORS
from casefolio.api.v3.hal import HalResponse
from casefolio.api.v3.problems import not_found, not_found_as
from casefolio.domain import projects, users

router = dialect_router(
    "/api/v3",
    "v3 root",
    default_response_class=HalResponse,
    responses=COMMON_V3_ERRORS,
)
DEFAULT_PAGE_SIZE = 20  # min(Setting.per_page_options), OpenProject's fallback
USER_NOT_FOUND = "The specified user does not exist or you do not have permission to view them."
# Documented, not enforced: a longer reference is not found, like any other unknown one.
UserRef = Annotated[str, Path(json_schema_extra={"maxLength": 64})]
ProjectRef = Annotated[str, Path(json_schema_extra={"maxLength": 64})]


@router.get("", summary="The API root")
async def read_root(who: PrincipalDep) -> HalResponse:
    """The API root, /api/v3 itself."""
    return HalResponse(representers.root(who))


@router.get("/users/{user_ref}", summary="View a user (`me` for the caller)")
async def read_user(user_ref: UserRef, session: SessionDep, who: PrincipalDep) -> HalResponse:
    if user_ref == "me":
        user_id = who.user_id
    elif user_ref.isascii() and user_ref.isdigit() and len(user_ref) <= 18:
        user_id = int(user_ref)
    else:
        raise not_found(USER_NOT_FOUND)
    with not_found_as(USER_NOT_FOUND):
        row = await users.get(session, user_id=user_id)
    full = who.is_operator or who.user_id == row.id
    return HalResponse(representers.user(row, full=full))


@router.get("/projects", summary="List the projects the caller may view")
async def list_projects(
    session: SessionDep, who: PrincipalDep, query: paging.CollectionQueryDep
) -> HalResponse:
    params = query.page(default_size=DEFAULT_PAGE_SIZE)
    stmt = queries.project_query(who, filters=query.filters, sort_by=query.sort_by)
    total, rows = await paging.fetch(session, stmt, params)
    return HalResponse(
        paging.offset_collection(hal.projects(), params, total, render.projects(rows))
    )


@router.get("/projects/{project_ref}", summary="View a project (by id or identifier)")
async def read_project(
    project_ref: ProjectRef, session: SessionDep, who: PrincipalDep
) -> HalResponse:
    digits = project_ref.removeprefix(representers.PROJECT_IDENTIFIER_PREFIX)
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
        raise not_found(V3_NOT_FOUND)
    project = await projects.get(session, who=who, project_id=int(digits))
    return HalResponse(representers.project(project))
