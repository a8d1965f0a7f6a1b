"""Teams and their members."""

from __future__ import annotations

from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.ids import TeamId
from casefolio.api.pagination import ListingDep
from casefolio.api.v1.routing import v1_router
from casefolio.api.v1.schemas import (
    CONFLICT_RESPONSE,
    ApiInput,
    ApiModel,
    EmailInPath,
    Name,
    Timestamp,
    WireId,
)
from casefolio.api.v1.users import UserOut
from casefolio.domain import teams

router = v1_router("teams")


class TeamIn(ApiInput):
    name: Name


class TeamOut(ApiModel):
    id: WireId
    name: str
    created_at: Timestamp


@router.get("/teams", response_model=list[TeamOut], summary="List teams")
async def list_teams(session: SessionDep, _: PrincipalDep, listing: ListingDep) -> list[TeamOut]:
    page = await teams.list_page(session, page=listing.page)
    return [TeamOut.model_validate(t) for t in listing.items(page)]


@router.post(
    "/teams",
    status_code=201,
    responses=CONFLICT_RESPONSE,
    response_model=TeamOut,
    summary="Create a team",
)
async def create_team(body: TeamIn, session: SessionDep, who: PrincipalDep) -> TeamOut:
    return TeamOut.model_validate(await teams.create(session, who=who, name=body.name))


@router.get("/teams/{teamId}/users", response_model=list[UserOut], summary="List a team's users")
async def list_team_users(
    team_id: TeamId, session: SessionDep, _: PrincipalDep, listing: ListingDep
) -> list[UserOut]:
    page = await teams.members_page(session, team_id=team_id, page=listing.page)
    return [UserOut.model_validate(u) for u in listing.items(page)]


@router.put(
    "/teams/{teamId}/users/{email}",
    response_model=UserOut,
    summary="Add a user to a team (no body needed)",
)
async def add_team_user(
    team_id: TeamId, email: EmailInPath, session: SessionDep, who: PrincipalDep
) -> UserOut:
    user = await teams.add_member(session, who=who, team_id=team_id, email=email)
    return UserOut.model_validate(user)


@router.delete(
    "/teams/{teamId}/users/{email}", status_code=204, summary="Remove a user from a team"
)
async def remove_team_user(
    team_id: TeamId, email: EmailInPath, session: SessionDep, who: PrincipalDep
) -> None:
    await teams.remove_member(session, who=who, team_id=team_id, email=email)
