"""Every permission rule in one place: system-level rules here, project rules below them.

A caller becomes a `ProjectScope` (project, role, capabilities) through `scope()` (or, for a
read that fetched the caller's rank in its own statement, `scope_ranked()`); nothing outside
this module can make one, so a domain function that takes a scope cannot run unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

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

_MINT = object()  # only this module holds it, so only this module makes a ProjectScope


class _OfProject(Protocol):
    @property
    def project_id(self) -> int: ...


OfProject = TypeVar("OfProject", bound=_OfProject)


@dataclass(frozen=True)
class ProjectScope:
    """Proof that `who` may act on `project_id` with `role`: made only by `scope()`."""

    who: Principal
    project_id: int
    role: Role
    _mint: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._mint is not _MINT:
            raise TypeError("A ProjectScope is made by access.scope(), nowhere else.")

    @property
    def user_id(self) -> int:
        return self.who.user_id

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.role.capabilities

    def require(self, capability: Capability, *, message: str | None = None) -> ProjectScope:
        """Return this scope if its role includes `capability`; Forbidden naming it if not."""
        _require_role(self.role, self.project_id, capability, message)
        return self

    def allows(self, capability: Capability) -> bool:
        return capability in self.role.capabilities

    async def get(self, db: AsyncSession, model: type[OfProject], row_id: int) -> OfProject:
        """Return the project's `model` row `row_id` (a folder, field, hold, document);
        NotFound naming the project if there is none or it is another project's: a scope
        reaches its own project's rows only."""
        row = await db.get(model, row_id)
        if row is None or row.project_id != self.project_id:
            raise NotFound(f"{model.__name__} {row_id} not found in project {self.project_id}.")
        return row


async def scope(
    db: AsyncSession,
    who: Principal,
    project_id: int,
    capability: Capability,
    *,
    message: str | None = None,
) -> ProjectScope:
    """The one project check: return the caller's scope on the project if their role there
    includes `capability`. Missing or invisible → NotFound (no existence leak); visible but
    not allowed → Forbidden naming the missing capability (after a seed's `message`, if any).
    The project's existence and the caller's role come in one statement."""
    parameters = {"project_id": project_id, "user_id": who.user_id}
    found = (await db.execute(PROJECT_AND_RANK, parameters)).first()
    if found is None:
        raise NotFound(f"Project {project_id} not found.")
    return scope_ranked(who, project_id, found[1], capability, message=message)


def scope_ranked(
    who: Principal,
    project_id: int,
    rank: int | None,
    capability: Capability,
    *,
    message: str | None = None,
) -> ProjectScope:
    """`scope()`, given the rank `role_rank_column` read for an existing project, for a read
    that checks access in the statement that reads."""
    role = PROJECT_ADMIN if who.is_operator else role_ranked(rank)
    return ProjectScope(
        who, project_id, _require_role(role, project_id, capability, message), _MINT
    )


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
    the enclosing statement or parameters; NULL for no grant. Give it to `scope_ranked`.

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
    return _visible_to(who.user_id)


def _visible_to(user_id: int | BindParameter[int] | None) -> Select[tuple[int]]:
    direct = select(ProjectUserGrant.project_id).where(ProjectUserGrant.user_id == user_id)
    via_teams = (
        select(ProjectTeamGrant.project_id)
        .join(TeamMember, TeamMember.team_id == ProjectTeamGrant.team_id)
        .where(TeamMember.user_id == user_id)
    )
    return select(direct.union(via_teams).subquery().c[0])


#: visible_project_ids of the user given as the parameter `user_id`: for a statement built
#: once (a module constant that runs compiled once, fastpath/prepared.py).
VISIBLE_PROJECT_IDS = _visible_to(_USER_ID)


_PROJECTS = cast(Table, Project.__table__)
#: The project's id (no row: no such project) and the caller's rank there (`require_ranked`);
#: parameters `project_id` and `user_id`.
PROJECT_AND_RANK = select(_PROJECTS.c.id, role_rank_column(_PROJECTS.c.id)).where(
    _PROJECTS.c.id == bindparam("project_id")
)


async def scoped_project(
    db: AsyncSession,
    who: Principal,
    project_id: int,
    capability: Capability = Capability.DOCUMENTS_READ,
) -> tuple[ProjectScope, Project]:
    """`scope()` and the project's row, for callers that show or change the project itself:
    the row and the caller's rank in one statement (a round trip less on every project
    page)."""
    found = (
        await db.execute(_PROJECT_ROW_AND_RANK, {"project_id": project_id, "user_id": who.user_id})
    ).first()
    if found is None:
        raise NotFound(f"Project {project_id} not found.")
    project, rank = found
    return scope_ranked(who, project_id, rank, capability), project


_PROJECT_ROW_AND_RANK = select(Project, role_rank_column(_PROJECTS.c.id)).where(
    Project.id == bindparam("project_id")
)


def _require_role(
    role: Role | None, project_id: int, capability: Capability, message: str | None
) -> Role:
    if role is None:
        raise NotFound(f"Project {project_id} not found.")
    if capability not in role.capabilities:
        missing = f"Your role on project {project_id} ({role.name}) does not include {capability}."
        # A caller's own sentence (the seed's, for deletes) still names what is missing.
        raise Forbidden(f"{message}. {missing}" if message else missing)
    return role


def require_download_allowed(project: Project) -> None:
    """Content leaves through the API only where the project's downloadViaApi setting allows."""
    if not project.download_via_api:
        raise Forbidden(
            f"Downloading documents through the API is switched off for project {project.id}; "
            "an operator or the project's creator can switch on its downloadViaApi setting."
        )


def may_switch_downloads(who: Principal, project: Project) -> bool:
    """Whether the caller may change the project's downloadViaApi setting: operators and the
    project's creator may (DESIGN.md), not every Project Admin: it decides whether the
    project's content may leave through the API at all."""
    return who.is_operator or (project.created_by is not None and project.created_by == who.user_id)


def require_download_switch(who: Principal, project: Project) -> None:
    if not may_switch_downloads(who, project):
        raise Forbidden(
            f"Only an operator or the creator of project {project.id} can change its "
            "downloadViaApi setting."
        )
