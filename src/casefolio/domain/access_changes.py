"""Who gained or lost read access to a project through a membership change.

A grant, a revocation, a team's grant, or a team membership can each give or take away a
project; the feed tells each such user (project.access_granted / project.access_lost).
Operators see every project whatever their grants, so they never gain or lose one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from sqlalchemy import Select, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import ProjectTeamGrant, ProjectUserGrant, TeamMember, User
from casefolio.domain import events
from casefolio.domain.roles import Capability, role_named

#: PostgreSQL: membership changes take turns on this lock (held until their commit).
ACCESS_LOCK = 0x6361_7365_666F_6163


async def _readers(
    session: AsyncSession, project_ids: Iterable[int] | None, user_ids: Iterable[int] | None
) -> set[tuple[int, int]]:
    direct: Select[int, int, str] = select(
        ProjectUserGrant.project_id, ProjectUserGrant.user_id, ProjectUserGrant.role
    )
    via_teams: Select[int, int, str] = select(
        ProjectTeamGrant.project_id, TeamMember.user_id, ProjectTeamGrant.role
    ).join(TeamMember, TeamMember.team_id == ProjectTeamGrant.team_id)
    if project_ids is not None:
        ids = list(project_ids)
        direct = direct.where(ProjectUserGrant.project_id.in_(ids))
        via_teams = via_teams.where(ProjectTeamGrant.project_id.in_(ids))
    if user_ids is not None:
        users = list(user_ids)
        direct = direct.where(ProjectUserGrant.user_id.in_(users))
        via_teams = via_teams.where(TeamMember.user_id.in_(users))
    found: set[tuple[int, int]] = set()
    for project_id, user_id, role_name in await session.execute(union_all(direct, via_teams)):
        role = role_named(role_name)
        if role is not None and Capability.DOCUMENTS_READ in role.capabilities:
            found.add((project_id, user_id))
    return found


@asynccontextmanager
async def watch(
    session: AsyncSession,
    *,
    project_ids: Iterable[int] | None = None,
    user_ids: Iterable[int] | None = None,
) -> AsyncIterator[None]:
    """Around a membership change limited to these projects and/or users, emit an access
    event for every (project, user) pair whose read access it changed."""
    projects = None if project_ids is None else list(project_ids)
    users = None if user_ids is None else list(user_ids)
    if session.get_bind().dialect.name == "postgresql":
        # Two changes at once (a user's grant revoked while their team membership is
        # removed) would each still see the other's path to the project and neither report
        # the loss: the second waits for the first and then sees what it left (READ
        # COMMITTED). SQLite's writers take turns anyway. Membership changes are rare.
        await session.execute(text(f"SELECT pg_advisory_xact_lock({ACCESS_LOCK})"))
    before = await _readers(session, projects, users)
    yield
    await session.flush()
    after = await _readers(session, projects, users)
    changed = before ^ after
    if not changed:
        return
    operators = set(
        await session.scalars(
            select(User.id).where(
                User.id.in_({user for _, user in changed}), User.is_operator.is_(True)
            )
        )
    )
    for project_id, user_id in sorted(changed):
        if user_id in operators:
            continue
        kind = events.AccessGranted if (project_id, user_id) in after else events.AccessLost
        events.emit(session, kind(project_id=project_id, user_id=user_id, subject_id=user_id))
