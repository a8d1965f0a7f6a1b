"""Projects (matters): settings, and who may work on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Select, Table, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import Project, ProjectTeamGrant, ProjectUserGrant, Team, TeamMember, User
from casefolio.db.types import utcnow
from casefolio.domain import (
    access,
    access_changes,
    events,
    grants,
    teams,
    templates,
    text,
    users,
)
from casefolio.domain.errors import Invalid, NotFound
from casefolio.domain.pages import Page, PageRequest, fetch_page, fetch_row_page
from casefolio.domain.principal import Principal
from casefolio.domain.roles import (
    DEFAULT_ROLE,
    PROJECT_ADMIN,
    Capability,
    Role,
    role_named,
    role_ranked,
    strongest,
)


@dataclass(frozen=True)
class Member:
    """A user's effective role on a project and where it comes from."""

    user: User
    role: Role
    direct_role: Role | None
    team_ids: list[int]


@dataclass(frozen=True)
class TeamGrant:
    team: Team
    role: Role


def parse_role(name: str | None) -> Role:
    """Given a role name from a request (None: the default), return the role or raise Invalid."""
    if name is None:
        return DEFAULT_ROLE
    role = role_named(name)
    if role is None:
        raise Invalid(
            f"Unknown role '{name}'. Use Read Only, Read Write or Project Admin.",
            [{"field": "role", "message": "unknown role"}],
        )
    return role


async def create(
    session: AsyncSession,
    *,
    who: Principal,
    name: str,
    description: str = "",
    template_id: int | None = None,
    download_via_api: bool = False,
) -> Project:
    """Create a project; its creator becomes its Project Admin; a template is copied in."""
    access.require_operator(who, "create projects")
    template = await templates.get(session, template_id=template_id) if template_id else None
    project = Project(
        name=text.required_name(name, of="project"),
        description=text.bounded_description(description),
        template_id=template_id,
        created_by=who.user_id,
        download_via_api=download_via_api,
    )
    session.add(project)
    await session.flush()
    events.emit(session, events.ProjectCreated(project_id=project.id, details={"name": name}))
    async with access_changes.watch(session, project_ids=[project.id]):
        # Reported as any grant is (project.member_set), as well as by access_changes.
        await grants.set_user_grant(
            session, project_id=project.id, user_id=who.user_id, role=PROJECT_ADMIN
        )
        if template is not None:
            await session.flush()
            scope = await access.scope(session, who, project.id, Capability.SETTINGS_MANAGE)
            await templates.apply(session, template=template, scope=scope)
    await session.flush()
    return project


async def get(session: AsyncSession, *, who: Principal, project_id: int) -> Project:
    """Return the project if the caller can see it; NotFound otherwise."""
    _, project = await access.scoped_project(session, who, project_id)
    return project


def visible_projects(who: Principal) -> Select[Project]:
    """The projects the caller may see (operators: all), for every list of projects."""
    stmt = select(Project)
    if not who.is_operator:
        stmt = stmt.where(Project.id.in_(access.visible_project_ids(who)))
    return stmt


async def list_page(
    session: AsyncSession, *, who: Principal, page: PageRequest
) -> Page[tuple[Project, Role | None]]:
    """The projects the caller may see, each with the caller's role on it (access.project_role's
    answer), read in the page's one statement rather than a statement per project."""
    if who.is_operator:
        found = await fetch_page(
            session, visible_projects(who), key=[Project.id], page=page, key_of=lambda p: (p.id,)
        )
        return Page([(p, PROJECT_ADMIN) for p in found.items], found.next_cursor)
    projects = cast(Table, Project.__table__)
    rank = access.role_rank_column(projects.c.id, bindparam("user_id", who.user_id))
    return await fetch_row_page(
        session,
        visible_projects(who).add_columns(rank.label("rank")),
        key=[Project.id],
        page=page,
        make=lambda row: (row.Project, role_ranked(row.rank)),
        key_of=lambda pair: (pair[0].id,),
    )


async def update(
    session: AsyncSession,
    *,
    who: Principal,
    project_id: int,
    name: str | None = None,
    description: str | None = None,
    download_via_api: bool | None = None,
) -> Project:
    _, project = await access.scoped_project(session, who, project_id, Capability.SETTINGS_MANAGE)
    if download_via_api is not None and download_via_api != project.download_via_api:
        access.require_download_switch(who, project)
    changed: list[str] = []
    if name is not None and (name := text.required_name(name, of="project")) != project.name:
        project.name = name
        changed.append("name")
    if description is not None and (
        (description := text.bounded_description(description)) != project.description
    ):
        project.description = description
        changed.append("description")
    if download_via_api is not None and download_via_api != project.download_via_api:
        project.download_via_api = download_via_api
        changed.append("downloadViaApi")
    if not changed:
        return project  # the values it has: no change to stamp or report
    project.updated_at = utcnow()
    await session.flush()
    events.emit(session, events.ProjectUpdated(project_id=project_id, details={"changed": changed}))
    return project


async def members_page(
    session: AsyncSession, *, who: Principal, project_id: int, page: PageRequest
) -> Page[Member]:
    """Everyone with a role on the project, directly or through a team, by user id."""
    await access.scope(session, who, project_id, Capability.DOCUMENTS_READ)
    direct = select(ProjectUserGrant.user_id).where(ProjectUserGrant.project_id == project_id)
    via_teams = (
        select(TeamMember.user_id)
        .join(ProjectTeamGrant, ProjectTeamGrant.team_id == TeamMember.team_id)
        .where(ProjectTeamGrant.project_id == project_id)
    )
    found = await fetch_page(
        session,
        select(User).where(User.id.in_(direct.union(via_teams))),
        key=[User.id],
        page=page,
        key_of=lambda u: (u.id,),
    )
    return Page(await _as_members(session, project_id, found.items), found.next_cursor)


async def member(session: AsyncSession, *, project_id: int, user: User) -> Member:
    """Given a user with a role on the project, return their membership."""
    [found] = await _as_members(session, project_id, [user])
    return found


async def _as_members(session: AsyncSession, project_id: int, users: list[User]) -> list[Member]:
    """The roles of these users on the project (each has one), with two queries in all."""
    ids = [u.id for u in users]
    direct = {
        g.user_id: g.role
        for g in await session.scalars(
            select(ProjectUserGrant).where(
                ProjectUserGrant.project_id == project_id, ProjectUserGrant.user_id.in_(ids)
            )
        )
    }
    via_team: dict[int, list[tuple[int, str]]] = {}
    rows = await session.execute(
        select(TeamMember.user_id, ProjectTeamGrant.team_id, ProjectTeamGrant.role)
        .join(ProjectTeamGrant, ProjectTeamGrant.team_id == TeamMember.team_id)
        .where(ProjectTeamGrant.project_id == project_id, TeamMember.user_id.in_(ids))
    )
    for user_id, team_id, role_name in rows:
        via_team.setdefault(user_id, []).append((team_id, role_name))
    result = []
    for user in users:
        names = [direct[user.id]] if user.id in direct else []
        names += [name for _, name in via_team.get(user.id, [])]
        effective = strongest(names)
        if effective is None:  # the page read only users holding a grant
            raise RuntimeError(f"user {user.id} has no role on project {project_id}")
        result.append(
            Member(
                user=user,
                role=effective,
                direct_role=role_named(direct[user.id]) if user.id in direct else None,
                team_ids=sorted(team_id for team_id, _ in via_team.get(user.id, [])),
            )
        )
    return result


async def grant_user(
    session: AsyncSession, *, who: Principal, project_id: int, email: str, role: Role
) -> User:
    await access.scope(session, who, project_id, Capability.MEMBERS_MANAGE)
    user = await users.get_by_email(session, email=email)
    async with access_changes.watch(session, project_ids=[project_id], user_ids=[user.id]):
        await grants.set_user_grant(session, project_id=project_id, user_id=user.id, role=role)
    return user


async def revoke_user(
    session: AsyncSession, *, who: Principal, project_id: int, email: str
) -> None:
    await access.scope(session, who, project_id, Capability.MEMBERS_MANAGE)
    user = await users.get_by_email(session, email=email)
    async with access_changes.watch(session, project_ids=[project_id], user_ids=[user.id]):
        result = await session.execute(
            delete(ProjectUserGrant).where(
                ProjectUserGrant.project_id == project_id, ProjectUserGrant.user_id == user.id
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"'{user.email}' has no direct role on project {project_id}.")
    events.emit(session, events.MemberRemoved(project_id=project_id, subject_id=user.id))


async def team_grants_page(
    session: AsyncSession, *, who: Principal, project_id: int, page: PageRequest
) -> Page[TeamGrant]:
    """The teams with a role on the project, by team id."""
    await access.scope(session, who, project_id, Capability.DOCUMENTS_READ)
    granted = select(ProjectTeamGrant.team_id).where(ProjectTeamGrant.project_id == project_id)
    found = await fetch_page(
        session,
        select(Team).where(Team.id.in_(granted)),
        key=[Team.id],
        page=page,
        key_of=lambda t: (t.id,),
    )
    rows = await session.execute(
        select(ProjectTeamGrant.team_id, ProjectTeamGrant.role).where(
            ProjectTeamGrant.project_id == project_id,
            ProjectTeamGrant.team_id.in_([t.id for t in found.items]),
        )
    )
    roles = {team_id: role for team_id, role in rows}
    team_grants = [TeamGrant(team=t, role=parse_role(roles[t.id])) for t in found.items]
    return Page(team_grants, found.next_cursor)


async def grant_team(
    session: AsyncSession, *, who: Principal, project_id: int, team_id: int, role: Role
) -> Team:
    await access.scope(session, who, project_id, Capability.MEMBERS_MANAGE)
    team = await teams.get(session, team_id=team_id)
    async with access_changes.watch(session, project_ids=[project_id]):
        await grants.set_team_grant(session, project_id=project_id, team_id=team_id, role=role)
    return team


async def revoke_team(
    session: AsyncSession, *, who: Principal, project_id: int, team_id: int
) -> None:
    await access.scope(session, who, project_id, Capability.MEMBERS_MANAGE)
    await teams.get(session, team_id=team_id)
    async with access_changes.watch(session, project_ids=[project_id]):
        result = await session.execute(
            delete(ProjectTeamGrant).where(
                ProjectTeamGrant.project_id == project_id, ProjectTeamGrant.team_id == team_id
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"Team {team_id} has no role on project {project_id}.")
    events.emit(session, events.TeamGrantRemoved(project_id=project_id, subject_id=team_id))
