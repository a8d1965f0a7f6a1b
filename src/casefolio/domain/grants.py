"""Writing a role grant, shared by project membership calls and template copies: both
report it the same way (project.member_set / project.team_set with the role)."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import ProjectTeamGrant, ProjectUserGrant
from casefolio.domain import events
from casefolio.domain.roles import Role

Grant = TypeVar("Grant", ProjectUserGrant, ProjectTeamGrant)


async def set_user_grant(
    session: AsyncSession, *, project_id: int, user_id: int, role: Role
) -> None:
    await _set_grant(
        session, ProjectUserGrant, events.MemberSet, role, project_id=project_id, user_id=user_id
    )


async def set_team_grant(
    session: AsyncSession, *, project_id: int, team_id: int, role: Role
) -> None:
    await _set_grant(
        session, ProjectTeamGrant, events.TeamGrantSet, role, project_id=project_id, team_id=team_id
    )


async def _set_grant(
    session: AsyncSession,
    grant_class: type[Grant],
    reported_as: type[events.DomainEvent],
    role: Role,
    *,
    project_id: int,
    **holder: int,
) -> None:
    """Give the holder (`user_id=` or `team_id=`) `role` on the project, replacing any other,
    and report it as `reported_as` naming the holder and the role."""
    (holder_id,) = holder.values()
    grant = await session.get(grant_class, (project_id, holder_id))
    if grant is None:
        session.add(grant_class(project_id=project_id, role=role.name, **holder))
    else:
        grant.role = role.name
    await session.flush()
    events.emit(
        session,
        reported_as(project_id=project_id, subject_id=holder_id, details={"role": role.name}),
    )
