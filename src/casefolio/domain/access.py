"""Every permission rule in one place: system-level rules here, project rules below them."""

from __future__ import annotations

from typing import cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CompoundSelect,
    ScalarSelect,
    Select,
    Table,
    bindparam,
    case,
    func,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import Project, ProjectTeamGrant, ProjectUserGrant, TeamMember
from casefolio.domain.errors import Forbidden, NotFound
from casefolio.domain.principal import Principal
from casefolio.domain.roles import PROJECT_ADMIN, ROLES, Capability, Role, role_ranked, strongest


def require_operator(who: Principal, action: str) -> None:
    """Raise Forbidden unless the caller is an operator ("Only an operator can <action>.")."""
    if not who.is_operator:
        raise Forbidden(f"Only an operator can {action}.")


def require_self_or_operator(who: Principal, user_id: int, action: str) -> None:
    if who.user_id != user_id and not who.is_operator:
        raise Forbidden(f"Only an operator can {action}.")


# ---- project rules -------------------------------------------------------------------------


async def project_role(db: AsyncSession, who: Principal, project_id: int) -> Role | None:
    """Given a caller and a project, return their effective role: the strongest of their
    direct grant and their teams' grants (operators act as Project Admin everywhere)."""
    if who.is_operator:
        return PROJECT_ADMIN
    names = await db.scalars(_ROLE_NAMES, {"project_id": project_id, "user_id": who.user_id})
    return strongest(list(names))


def _granted_roles(
    project_id: ColumnElement[int], user_id: ColumnElement[int] | None = None
) -> CompoundSelect[str]:
    """The role names granted to `user_id` (by default the bind parameter `user_id`) on
    `project_id`: directly, and through each of their teams."""
    if user_id is None:
        user_id = _USER_ID
    # correlate_except: a `project_id` column of another table comes from the enclosing
    # statement (role_rank_column), even from inside the derived table.
    direct = (
        select(ProjectUserGrant.role)
        .where(ProjectUserGrant.project_id == project_id, ProjectUserGrant.user_id == user_id)
        .correlate_except(ProjectUserGrant)
    )
    via_teams = (
        select(ProjectTeamGrant.role)
        .join(TeamMember, TeamMember.team_id == ProjectTeamGrant.team_id)
        .where(ProjectTeamGrant.project_id == project_id, TeamMember.user_id == user_id)
        .correlate_except(ProjectTeamGrant, TeamMember)
    )
    return union_all(direct, via_teams)


_USER_ID: BindParameter[int] = bindparam("user_id")
# Built once (it runs on nearly every request).
_ROLE_NAMES = _granted_roles(bindparam("project_id"))


def role_rank_column(
    project_id: ColumnElement[int], user_id: ColumnElement[int] | None = None
) -> ScalarSelect[int]:
    """`project_role` as a column of another read: the rank of the strongest role granted
    to `user_id` (by default the bind parameter `user_id`) on `project_id`, both columns of
    the enclosing statement or parameters; NULL for no grant. Give it to `require_ranked`.

    A read that checks access in the statement that reads saves a round trip. Grants hold
    a role's exact name (domain/grants.py), which is what the ranking matches.
    """
    granted = _granted_roles(project_id, user_id).subquery()
    rank = case({role.name: role.rank for role in ROLES}, value=granted.c.role)
    return select(func.max(rank)).scalar_subquery()


def visible_project_ids(who: Principal) -> Select[tuple[int]]:
    """The ids of projects the caller may see, as a subquery for list filters.

    Lists and single reads both go through this module, so "appears in the list" and
    "can be read" never disagree.
    """
    direct = select(ProjectUserGrant.project_id).where(ProjectUserGrant.user_id == who.user_id)
    via_teams = (
        select(ProjectTeamGrant.project_id)
        .join(TeamMember, TeamMember.team_id == ProjectTeamGrant.team_id)
        .where(TeamMember.user_id == who.user_id)
    )
    return select(direct.union(via_teams).subquery().c[0])


async def visible_project(session: AsyncSession, who: Principal, project_id: int) -> Project:
    """Return the project, or raise NotFound when it is missing or the caller has no role."""
    project = await session.get(Project, project_id)
    if project is None or await project_role(session, who, project_id) is None:
        raise NotFound(f"Project {project_id} not found.")
    return project


async def require(
    session: AsyncSession,
    who: Principal,
    project_id: int,
    capability: Capability,
    *,
    message: str | None = None,
) -> Project:
    """Return the project if the caller's role there includes `capability`.

    Invisible → NotFound (no existence leak); visible but not allowed → Forbidden naming the
    missing capability, unless a `message` the seed prescribes is given.
    """
    project = await session.get(Project, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} not found.")
    await require_on(session, who, project.id, capability, message=message)
    return project


async def require_on(
    db: AsyncSession,
    who: Principal,
    project_id: int,
    capability: Capability,
    *,
    message: str | None = None,
) -> None:
    """`require` for a project known to exist (e.g. that of a document just read)."""
    _require_role(await project_role(db, who, project_id), project_id, capability, message)


_PROJECTS = cast(Table, Project.__table__)
#: The project's id (no row: no such project) and the caller's rank there (`require_ranked`);
#: parameters `project_id` and `user_id`.
PROJECT_AND_RANK = select(_PROJECTS.c.id, role_rank_column(_PROJECTS.c.id)).where(
    _PROJECTS.c.id == bindparam("project_id")
)


async def require_project(
    db: AsyncSession, who: Principal, project_id: int, capability: Capability
) -> None:
    """`require` without loading the project: its existence and the caller's role in one
    statement, for reads that need only its id."""
    parameters = {"project_id": project_id, "user_id": who.user_id}
    found = (await db.execute(PROJECT_AND_RANK, parameters)).first()
    if found is None:
        raise NotFound(f"Project {project_id} not found.")
    require_ranked(who, project_id, found[1], capability)


def require_ranked(
    who: Principal, project_id: int, rank: int | None, capability: Capability
) -> None:
    """`require_on`, given what `role_rank_column` read for the caller and project."""
    role = PROJECT_ADMIN if who.is_operator else role_ranked(rank)
    _require_role(role, project_id, capability, None)


def _require_role(
    role: Role | None, project_id: int, capability: Capability, message: str | None
) -> None:
    if role is None:
        raise NotFound(f"Project {project_id} not found.")
    if capability not in role.capabilities:
        missing = f"Your role on project {project_id} ({role.name}) does not include {capability}."
        # A caller's own sentence (the seed's, for deletes) still names what is missing.
        raise Forbidden(f"{message}. {missing}" if message else missing)


def require_download_allowed(project: Project) -> None:
    """Content leaves through the API only where the project's downloadViaApi setting allows."""
    if not project.download_via_api:
        raise Forbidden(
            f"Downloading documents through the API is switched off for project {project.id}; "
            "a Project Admin can switch on its downloadViaApi setting."
        )
