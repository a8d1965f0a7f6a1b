"""Teams: named groups of users that can be granted a role on a project together."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import Team, TeamMember, User
from casefolio.domain import access, access_changes, events, text, users
from casefolio.domain.errors import Conflict, NotFound, found
from casefolio.domain.pages import Page, PageRequest, fetch_id_page
from casefolio.domain.principal import Principal


async def get(session: AsyncSession, *, team_id: int) -> Team:
    return found(await session.get(Team, team_id), f"Team {team_id} not found.")


async def list_page(session: AsyncSession, *, page: PageRequest) -> Page[Team]:
    return await fetch_id_page(session, select(Team), id_column=Team.id, page=page)


async def create(session: AsyncSession, *, who: Principal | None, name: str) -> Team:
    if who is not None:
        access.require_operator(who, "create teams")
    name = text.required_name(name, of="team")
    taken = await session.scalar(select(Team.id).where(Team.name == name))
    if taken is not None:
        raise Conflict(f"A team named '{name}' already exists (id {taken}).")
    team = Team(name=name)
    session.add(team)
    await session.flush()
    events.emit(session, events.TeamCreated(subject_id=team.id, details={"name": name}))
    return team


async def members_page(session: AsyncSession, *, team_id: int, page: PageRequest) -> Page[User]:
    await get(session, team_id=team_id)
    stmt = (
        select(User)
        .join(TeamMember, TeamMember.user_id == User.id)
        .where(TeamMember.team_id == team_id)
    )
    return await fetch_id_page(session, stmt, id_column=User.id, page=page)


async def _membership_change(
    session: AsyncSession, who: Principal | None, team_id: int, email: str
) -> User:
    """Check that `who` (None: a trusted internal caller) may change the team's members, and
    that the team exists; return the user with `email`."""
    if who is not None:
        access.require_operator(who, "change team membership")
    await get(session, team_id=team_id)
    return await users.get_by_email(session, email=email)


async def add_member(
    session: AsyncSession, *, who: Principal | None, team_id: int, email: str
) -> User:
    """Put the user with `email` in the team; adding an existing member changes nothing."""
    user = await _membership_change(session, who, team_id, email)
    if await session.get(TeamMember, (team_id, user.id)) is None:
        async with access_changes.watch(session, user_ids=[user.id]):
            session.add(TeamMember(team_id=team_id, user_id=user.id))
        events.emit(
            session, events.TeamMemberAdded(subject_id=team_id, details={"userId": user.id})
        )
    return user


async def remove_member(
    session: AsyncSession, *, who: Principal | None, team_id: int, email: str
) -> None:
    user = await _membership_change(session, who, team_id, email)
    async with access_changes.watch(session, user_ids=[user.id]):
        result = await session.execute(
            delete(TeamMember).where(TeamMember.team_id == team_id, TeamMember.user_id == user.id)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"'{user.email}' is not a member of team {team_id}.")
    events.emit(session, events.TeamMemberRemoved(subject_id=team_id, details={"userId": user.id}))
