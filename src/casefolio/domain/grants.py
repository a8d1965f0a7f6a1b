"""Writing a role grant, shared by project membership calls and template copies."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import ProjectTeamGrant, ProjectUserGrant
from casefolio.domain.roles import Role


async def set_user_grant(
    session: AsyncSession, *, project_id: int, user_id: int, role: Role
) -> None:
    grant = await session.get(ProjectUserGrant, (project_id, user_id))
    if grant is None:
        session.add(ProjectUserGrant(project_id=project_id, user_id=user_id, role=role.name))
    else:
        grant.role = role.name
    await session.flush()


async def set_team_grant(
    session: AsyncSession, *, project_id: int, team_id: int, role: Role
) -> None:
    grant = await session.get(ProjectTeamGrant, (project_id, team_id))
    if grant is None:
        session.add(ProjectTeamGrant(project_id=project_id, team_id=team_id, role=role.name))
    else:
        grant.role = role.name
    await session.flush()
