"""Administration: users, teams, project access and settings, through the same domain calls
(and so the same rules) as the API."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.api.deps import SessionDep
from casefolio.api.ids import PathId, optional_id
from casefolio.domain import access, accounts, projects, system, teams, users
from casefolio.domain.accounts import IssuedLink
from casefolio.domain.pages import MAX_LIMIT, PageRequest
from casefolio.domain.roles import ROLES, Capability
from casefolio.domain.websessions import SignedIn
from casefolio.web.deps import WebForm, WebRoute, WebUser, WebWriter
from casefolio.web.http import render, see_other, state_of

router = APIRouter(include_in_schema=False, route_class=WebRoute)
ALL = PageRequest(limit=MAX_LIMIT)


def _lifetime(request: Request) -> timedelta:
    return timedelta(hours=state_of(request).settings.password_link_hours)


async def _committed_forgetting_tokens(
    request: Request, session: AsyncSession, to: str
) -> RedirectResponse:
    # Committed before this process forgets its remembered token checks: a request in
    # between must not remember a user or the API switch as they were.
    await session.commit()
    state_of(request).credentials.clear()
    return see_other(to)


async def _users_page(
    request: Request, me: SignedIn, session: SessionDep, **extra: object
) -> Response:
    access.require_operator(me.principal, "administer users")
    listed = await users.list_page(session, page=ALL)
    return render(request, "admin_users.html", 200, users=listed.items, **extra)


async def _show_link(
    request: Request, me: SignedIn, session: SessionDep, issued: IssuedLink, kind: str
) -> Response:
    """The users page with the link just issued, for the operator to hand on."""
    link = f"{str(request.base_url).rstrip('/')}/set-password/{issued.secret}"
    return await _users_page(request, me, session, link=link, link_for=issued.user, link_kind=kind)


@router.get("/admin/users")
async def users_page(request: Request, me: WebUser, session: SessionDep) -> Response:
    return await _users_page(request, me, session)


@router.post("/admin/users")
async def invite(request: Request, me: WebWriter, session: SessionDep, form: WebForm) -> Response:
    issued = await accounts.invite(
        session,
        who=me.principal,
        email=form.get("email", ""),
        name=form.get("name", ""),
        is_operator=form.get("operator") == "on",
        lifetime=_lifetime(request),
    )
    return await _show_link(request, me, session, issued, "invitation")


@router.post("/admin/users/{user_id}/active")
async def set_active(
    request: Request, user_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    active = form.get("active") == "true"
    await users.set_active(session, who=me.principal, user_id=user_id, active=active)
    return await _committed_forgetting_tokens(request, session, "/admin/users")


@router.post("/admin/users/{user_id}/operator")
async def set_operator(
    request: Request, user_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    operator = form.get("operator") == "true"
    await users.set_operator(session, who=me.principal, user_id=user_id, is_operator=operator)
    return await _committed_forgetting_tokens(request, session, "/admin/users")


@router.post("/admin/users/{user_id}/reset")
async def reset_password(
    request: Request, user_id: PathId, me: WebWriter, session: SessionDep
) -> Response:
    issued = await accounts.issue_link(
        session,
        who=me.principal,
        user_id=user_id,
        purpose=accounts.RESET,
        lifetime=_lifetime(request),
    )
    return await _show_link(request, me, session, issued, "password reset")


# ---- teams ---------------------------------------------------------------------------------


@router.get("/admin/teams")
async def teams_page(request: Request, me: WebUser, session: SessionDep) -> Response:
    access.require_operator(me.principal, "administer teams")
    listed = (await teams.list_page(session, page=ALL)).items
    members = {
        t.id: (await teams.members_page(session, team_id=t.id, page=ALL)).items for t in listed
    }
    return render(request, "admin_teams.html", teams=listed, members=members)


@router.post("/admin/teams")
async def create_team(me: WebWriter, session: SessionDep, form: WebForm) -> Response:
    await teams.create(session, who=me.principal, name=form.get("name", ""))
    return see_other("/admin/teams")


@router.post("/admin/teams/{team_id}/members")
async def add_member(
    team_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    await teams.add_member(session, who=me.principal, team_id=team_id, email=form.get("email", ""))
    return see_other("/admin/teams")


@router.post("/admin/teams/{team_id}/members/remove")
async def remove_member(
    team_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    email = form.get("email", "")
    await teams.remove_member(session, who=me.principal, team_id=team_id, email=email)
    return see_other("/admin/teams")


# ---- installation settings -----------------------------------------------------------------


@router.get("/admin/settings")
async def settings_page(request: Request, me: WebUser, session: SessionDep) -> Response:
    access.require_operator(me.principal, "change system settings")
    return render(request, "admin_settings.html", current=await system.get(session))


@router.post("/admin/settings")
async def update_settings(
    request: Request, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    enabled = form.get("integrationsApiEnabled") == "on"
    await system.update(session, who=me.principal, integrations_api_enabled=enabled)
    return await _committed_forgetting_tokens(request, session, "/admin/settings")


# ---- project access and settings -----------------------------------------------------------


@router.get("/projects/{project_id}/access")
async def access_page(
    request: Request, project_id: PathId, me: WebUser, session: SessionDep
) -> Response:
    scope, project = await access.scoped_project(session, me.principal, project_id)
    role = scope.role
    members = (
        await projects.members_page(session, who=me.principal, project_id=project_id, page=ALL)
    ).items
    granted = (
        await projects.team_grants_page(session, who=me.principal, project_id=project_id, page=ALL)
    ).items
    all_teams = (await teams.list_page(session, page=ALL)).items
    return render(
        request,
        "project_access.html",
        project=project,
        role=role,
        members=members,
        granted=granted,
        all_teams=all_teams,
        roles=ROLES,
        may_switch_downloads=(
            scope.allows(Capability.SETTINGS_MANAGE)
            and access.may_switch_downloads(me.principal, project)
        ),
    )


def _back(project_id: PathId) -> RedirectResponse:
    return see_other(f"/projects/{project_id}/access")


@router.post("/projects/{project_id}/access/users")
async def grant_user(
    project_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    role = projects.parse_role(form.get("role") or None)
    email = form.get("email", "")
    await projects.grant_user(
        session, who=me.principal, project_id=project_id, email=email, role=role
    )
    return _back(project_id)


@router.post("/projects/{project_id}/access/users/remove")
async def revoke_user(
    project_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    email = form.get("email", "")
    await projects.revoke_user(session, who=me.principal, project_id=project_id, email=email)
    return _back(project_id)


@router.post("/projects/{project_id}/access/teams")
async def grant_team(
    project_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    role = projects.parse_role(form.get("role") or None)
    team_id = optional_id(form.get("team", ""), field="team", label="The team") or 0
    await projects.grant_team(
        session, who=me.principal, project_id=project_id, team_id=team_id, role=role
    )
    return _back(project_id)


@router.post("/projects/{project_id}/access/teams/{team_id}/remove")
async def revoke_team(
    project_id: PathId, team_id: PathId, me: WebWriter, session: SessionDep
) -> Response:
    await projects.revoke_team(session, who=me.principal, project_id=project_id, team_id=team_id)
    return _back(project_id)


@router.post("/projects/{project_id}/settings")
async def project_settings(
    project_id: PathId, me: WebWriter, session: SessionDep, form: WebForm
) -> Response:
    download_via_api = form.get("downloadViaApi") == "on"
    await projects.update(
        session, who=me.principal, project_id=project_id, download_via_api=download_via_api
    )
    return _back(project_id)
