"""The visibility query and the single-read check must agree: nothing leaks, nothing hides."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from casefolio.db.engine import Database
from casefolio.db.models import (
    Field,
    Folder,
    Hold,
    Project,
    ProjectTeamGrant,
    ProjectUserGrant,
    Team,
    TeamMember,
)
from casefolio.domain import access
from casefolio.domain.errors import Forbidden, NotFound
from casefolio.domain.principal import Principal
from casefolio.domain.roles import PROJECT_ADMIN, Capability
from tests.factories import make_actor


def _principal(user_id: int, operator: bool = False) -> Principal:
    return Principal(user_id=user_id, email="x@example.com", name="X", is_operator=operator)


async def test_visible_ids_match_single_reads_for_every_project(db: Database) -> None:
    alice = await make_actor(db, email="alice@example.com")
    bob = await make_actor(db, email="bob@example.com")
    async with db.write() as session:
        projects = [Project(name=f"P{i}") for i in range(4)]
        session.add_all(projects)
        team = Team(name="T")
        session.add(team)
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=alice.user_id))
        session.add(
            ProjectUserGrant(project_id=projects[0].id, user_id=alice.user_id, role="Read Only")
        )
        session.add(ProjectTeamGrant(project_id=projects[1].id, team_id=team.id, role="Read Write"))
        session.add(
            ProjectUserGrant(project_id=projects[2].id, user_id=bob.user_id, role="Project Admin")
        )
        ids = [p.id for p in projects]

    async with db.read() as session:
        for actor, expected in ((alice, {ids[0], ids[1]}), (bob, {ids[2]})):
            who = _principal(actor.user_id)
            listed = set(await session.scalars(access.visible_project_ids(who)))
            assert listed == expected, f"leaked or hidden: {listed ^ expected}"
            for project_id in ids:
                if project_id in expected:
                    await access.scope(session, who, project_id, Capability.DOCUMENTS_READ)
                else:
                    with pytest.raises(NotFound):
                        await access.scope(session, who, project_id, Capability.DOCUMENTS_READ)


async def test_strongest_grant_wins_and_missing_capability_is_named(db: Database) -> None:
    carol = await make_actor(db, email="carol@example.com")
    async with db.write() as session:
        project = Project(name="P")
        team = Team(name="Admins")
        session.add_all([project, team])
        await session.flush()
        session.add(
            ProjectUserGrant(project_id=project.id, user_id=carol.user_id, role="Read Only")
        )
        project_id, team_id = project.id, team.id
    who = _principal(carol.user_id)
    async with db.read() as session:
        with pytest.raises(Forbidden, match=r"\(Read Only\) does not include documents.write"):
            await access.scope(session, who, project_id, Capability.DOCUMENTS_WRITE)
    async with db.write() as session:
        session.add(TeamMember(team_id=team_id, user_id=carol.user_id))
        session.add(ProjectTeamGrant(project_id=project_id, team_id=team_id, role="Project Admin"))
    async with db.read() as session:
        role = await access.project_role(session, who, project_id)
        assert role is not None and role.name == "Project Admin"
        await access.scope(session, who, project_id, Capability.DOCUMENTS_DELETE)


async def test_operator_sees_everything_without_grants(db: Database) -> None:
    async with db.write() as session:
        session.add(Project(name="Lonely"))
    op = _principal(10_000, operator=True)
    async with db.read() as session:
        [project_id] = list(await session.scalars(select(Project.id)))
        await access.scope(session, op, project_id, Capability.SETTINGS_MANAGE)


async def test_the_rank_column_agrees_with_project_role(db: Database) -> None:
    # documents.get checks access with role_rank_column inside its read; it must find the
    # same strongest grant as project_role, direct or through any team.
    alice = await make_actor(db, email="alice@example.com")
    bob = await make_actor(db, email="bob@example.com")
    async with db.write() as session:
        projects = [Project(name=f"P{i}") for i in range(5)]
        teams = [Team(name=f"T{i}") for i in range(3)]
        session.add_all([*projects, *teams])
        await session.flush()
        p, t = [x.id for x in projects], [x.id for x in teams]
        session.add_all(TeamMember(team_id=team_id, user_id=alice.user_id) for team_id in t)
        session.add_all(
            [
                ProjectUserGrant(project_id=p[1], user_id=alice.user_id, role="Read Only"),
                ProjectTeamGrant(project_id=p[2], team_id=t[0], role="Read Write"),
                ProjectUserGrant(project_id=p[3], user_id=alice.user_id, role="Read Only"),
                ProjectTeamGrant(project_id=p[3], team_id=t[1], role="Project Admin"),
                ProjectTeamGrant(project_id=p[4], team_id=t[1], role="Read Only"),
                ProjectTeamGrant(project_id=p[4], team_id=t[2], role="Read Write"),
                ProjectUserGrant(project_id=p[0], user_id=bob.user_id, role="Project Admin"),
            ]
        )
    ranked = select(Project.id, access.role_rank_column(Project.id)).where(Project.id.in_(p))
    expected = {
        alice.user_id: {p[0]: None, p[1]: 1, p[2]: 2, p[3]: 3, p[4]: 2},
        bob.user_id: {p[0]: 3, p[1]: None, p[2]: None, p[3]: None, p[4]: None},
    }
    async with db.read() as session:
        for user_id, ranks in expected.items():
            found = dict(tuple(row) for row in await session.execute(ranked, {"user_id": user_id}))
            assert found == ranks
            for project_id, rank in ranks.items():
                role = await access.project_role(session, _principal(user_id), project_id)
                assert (role.rank if role else None) == rank


def test_a_scope_is_made_by_the_access_module_only() -> None:
    with pytest.raises(TypeError, match=r"access\.scope"):
        access.ProjectScope(_principal(1), 1, PROJECT_ADMIN)


async def test_a_scope_names_its_role_and_refuses_what_the_role_lacks(db: Database) -> None:
    dave = await make_actor(db, email="dave@example.com")
    async with db.write() as session:
        project = Project(name="P")
        session.add(project)
        await session.flush()
        session.add(ProjectUserGrant(project_id=project.id, user_id=dave.user_id, role="Read Only"))
        project_id = project.id
    async with db.read() as session:
        scope = await access.scope(
            session, _principal(dave.user_id), project_id, Capability.DOCUMENTS_READ
        )
    assert (scope.project_id, scope.role.name) == (project_id, "Read Only")
    assert scope.capabilities == frozenset({Capability.DOCUMENTS_READ})
    with pytest.raises(Forbidden, match=r"documents\.write"):
        scope.require(Capability.DOCUMENTS_WRITE)


def _rows_of(project_id: int) -> list[Folder | Field | Hold]:
    return [
        Folder(project_id=project_id, parent_key=0, name="F"),
        Field(project_id=project_id, name="Custodian", type="text"),
        Hold(project_id=project_id, name="H", reason="R", scope="project"),
    ]


async def test_a_scope_reaches_its_own_projects_rows_only(db: Database) -> None:
    erin = await make_actor(db, email="erin@example.com", operator=True)
    async with db.write() as session:
        mine, theirs = Project(name="Mine"), Project(name="Theirs")
        session.add_all([mine, theirs])
        await session.flush()
        own, other = _rows_of(mine.id), _rows_of(theirs.id)
        session.add_all([*own, *other])
        await session.flush()
        mine_id = mine.id
        cases = [(type(a), a.id, b.id) for a, b in zip(own, other, strict=True)]
    who = _principal(erin.user_id, operator=True)
    async with db.read() as session:
        scope = await access.scope(session, who, mine_id, Capability.DOCUMENTS_READ)
        for model, own_id, other_id in cases:
            assert (await scope.get(session, model, own_id)).id == own_id
            for missing in (other_id, 999_999):
                message = rf"^{model.__name__} {missing} not found in project {mine_id}\.$"
                with pytest.raises(NotFound, match=message):
                    await scope.get(session, model, missing)
