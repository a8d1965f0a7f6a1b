"""Projects (matters) and who may work on them."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.ids import BodyId, ProjectId, TeamId
from casefolio.api.pagination import ListingDep
from casefolio.api.v1.routing import patch_route, v1_router
from casefolio.api.v1.schemas import (
    ONE_LINE,
    OPTIONAL_ROLE,
    ApiInput,
    ApiModel,
    EmailInPath,
    Name,
    Timestamp,
    WireId,
)
from casefolio.api.v1.teams import TeamOut
from casefolio.db.models import Project, Team
from casefolio.domain import access, projects, text
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Role

router = v1_router("projects")


class ProjectSettings(ApiInput):
    download_via_api: bool = Field(
        False, description="Whether document content may be downloaded through the API."
    )


class ProjectSettingsUpdate(ApiInput):
    download_via_api: bool | None = Field(
        None,
        description="Whether document content may be downloaded through the API. Only an "
        "operator or the project's creator may change it (403 otherwise; sending the value it "
        "already has is no change).",
    )


class ProjectIn(ApiInput):
    name: Name = Field(examples=["Smith v Jones"])
    description: str = Field("", max_length=text.MAX_DESCRIPTION)
    template_id: BodyId | None = None
    settings: ProjectSettings | None = None


class ProjectUpdate(ApiInput):
    name: str | None = Field(
        None, min_length=1, max_length=text.MAX_NAME, json_schema_extra=ONE_LINE
    )
    description: str | None = Field(None, max_length=text.MAX_DESCRIPTION)
    settings: ProjectSettingsUpdate | None = None


class ProjectOut(ApiModel):
    id: WireId
    name: str
    description: str
    template_id: WireId | None
    created_at: Timestamp
    updated_at: Timestamp
    settings: ProjectSettings
    role: str | None = Field(description="The caller's effective role on the project.")


class GrantIn(ApiInput):
    role: str | None = Field(
        None,
        description="Read Only, Read Write (default) or Project Admin.",
        max_length=40,
        json_schema_extra=OPTIONAL_ROLE,
    )


class MemberOut(ApiModel):
    id: WireId
    email: str
    name: str
    role: str = Field(description="Effective role: the strongest of direct and team grants.")
    direct_role: str | None
    team_ids: list[WireId]


class TeamGrantOut(TeamOut):
    role: str


async def _out(session: AsyncSession, who: Principal, project: Project) -> ProjectOut:
    return _out_with_role(project, await access.project_role(session, who, project.id))


def _out_with_role(project: Project, role: Role | None) -> ProjectOut:
    return ProjectOut(
        id=project.id,
        name=project.name,
        description=project.description,
        template_id=project.template_id,
        created_at=project.created_at,
        updated_at=project.updated_at,
        settings=ProjectSettings(download_via_api=project.download_via_api),
        role=role.name if role else None,
    )


def _team_grant_out(team: Team, role: Role) -> TeamGrantOut:
    return TeamGrantOut(id=team.id, name=team.name, created_at=team.created_at, role=role.name)


def _role(body: GrantIn | None) -> Role:
    return projects.parse_role(body.role if body else None)


@router.get("/projects", response_model=list[ProjectOut], summary="List visible projects")
async def list_projects(
    session: SessionDep, who: PrincipalDep, listing: ListingDep
) -> list[ProjectOut]:
    page = await projects.list_page(session, who=who, page=listing.page)
    return [_out_with_role(p, role) for p, role in listing.items(page)]


@router.post("/projects", status_code=201, response_model=ProjectOut, summary="Create a project")
async def create_project(body: ProjectIn, session: SessionDep, who: PrincipalDep) -> ProjectOut:
    project = await projects.create(
        session,
        who=who,
        name=body.name,
        description=body.description,
        template_id=body.template_id,
        download_via_api=body.settings.download_via_api if body.settings else False,
    )
    return await _out(session, who, project)


@router.get("/projects/{projectId}", response_model=ProjectOut, summary="Read a project")
async def read_project(project_id: ProjectId, session: SessionDep, who: PrincipalDep) -> ProjectOut:
    return await _out(session, who, await projects.get(session, who=who, project_id=project_id))


@patch_route(
    router,
    "/projects/{projectId}",
    response_model=ProjectOut,
    summary="Change a project's name, description or settings (Project Admin)",
)
async def update_project(
    project_id: ProjectId,
    body: ProjectUpdate,
    session: SessionDep,
    who: PrincipalDep,
) -> ProjectOut:
    project = await projects.update(
        session,
        who=who,
        project_id=project_id,
        name=body.name,
        description=body.description,
        download_via_api=body.settings.download_via_api if body.settings else None,
    )
    return await _out(session, who, project)


def _member_out(m: projects.Member) -> MemberOut:
    return MemberOut(
        id=m.user.id,
        email=m.user.email,
        name=m.user.name,
        role=m.role.name,
        direct_role=m.direct_role.name if m.direct_role else None,
        team_ids=m.team_ids,
    )


@router.get(
    "/projects/{projectId}/users",
    response_model=list[MemberOut],
    summary="List everyone with a role on the project, directly or through a team",
)
async def list_project_users(
    project_id: ProjectId, session: SessionDep, who: PrincipalDep, listing: ListingDep
) -> list[MemberOut]:
    page = await projects.members_page(session, who=who, project_id=project_id, page=listing.page)
    return [_member_out(m) for m in listing.items(page)]


@router.put(
    "/projects/{projectId}/users/{email}",
    response_model=MemberOut,
    summary="Give a user a role on the project (body optional; default Read Write)",
)
async def add_project_user(
    project_id: ProjectId,
    email: EmailInPath,
    session: SessionDep,
    who: PrincipalDep,
    body: GrantIn | None = None,
) -> MemberOut:
    user = await projects.grant_user(
        session, who=who, project_id=project_id, email=email, role=_role(body)
    )
    return _member_out(await projects.member(session, project_id=project_id, user=user))


@router.delete(
    "/projects/{projectId}/users/{email}", status_code=204, summary="Remove a user's direct role"
)
async def remove_project_user(
    project_id: ProjectId, email: EmailInPath, session: SessionDep, who: PrincipalDep
) -> None:
    await projects.revoke_user(session, who=who, project_id=project_id, email=email)


@router.get(
    "/projects/{projectId}/teams",
    response_model=list[TeamGrantOut],
    summary="List the teams with a role on the project",
)
async def list_project_teams(
    project_id: ProjectId, session: SessionDep, who: PrincipalDep, listing: ListingDep
) -> list[TeamGrantOut]:
    page = await projects.team_grants_page(
        session, who=who, project_id=project_id, page=listing.page
    )
    return [_team_grant_out(g.team, g.role) for g in listing.items(page)]


@router.put(
    "/projects/{projectId}/teams/{teamId}",
    response_model=TeamGrantOut,
    summary="Give a team a role on the project (body optional; default Read Write)",
)
async def add_project_team(
    project_id: ProjectId,
    team_id: TeamId,
    session: SessionDep,
    who: PrincipalDep,
    body: GrantIn | None = None,
) -> TeamGrantOut:
    role = _role(body)
    team = await projects.grant_team(
        session, who=who, project_id=project_id, team_id=team_id, role=role
    )
    return _team_grant_out(team, role)


@router.delete(
    "/projects/{projectId}/teams/{teamId}", status_code=204, summary="Remove a team's role"
)
async def remove_project_team(
    project_id: ProjectId, team_id: TeamId, session: SessionDep, who: PrincipalDep
) -> None:
    await projects.revoke_team(session, who=who, project_id=project_id, team_id=team_id)
