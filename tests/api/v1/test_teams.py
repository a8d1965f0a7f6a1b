from __future__ import annotations

import httpx

from tests.api.v1.conftest import Matter, upload
from tests.factories import Actor


async def test_team_membership_round_trip(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    team = await client.post("/api/v1/teams", json={"name": "Litigation"}, headers=operator.headers)
    assert team.status_code == 201
    team_id = team.json()["id"]
    assert team.json()["name"] == "Litigation"

    # PUT with no body at all, as the seed describes (Content-Length: 0).
    added = await client.put(
        f"/api/v1/teams/{team_id}/users/{member.email}",
        headers={**operator.headers, "Content-Length": "0"},
    )
    assert added.status_code == 200 and added.json()["email"] == member.email
    again = await client.put(
        f"/api/v1/teams/{team_id}/users/{member.email}", headers=operator.headers
    )
    assert again.status_code == 200

    users = await client.get(f"/api/v1/teams/{team_id}/users", headers=member.headers)
    assert [u["email"] for u in users.json()] == [member.email]
    teams = await client.get("/api/v1/teams", headers=member.headers)
    assert [t["name"] for t in teams.json()] == ["Litigation"]

    removed = await client.delete(
        f"/api/v1/teams/{team_id}/users/{member.email}", headers=operator.headers
    )
    assert removed.status_code == 204
    assert (await client.get(f"/api/v1/teams/{team_id}/users", headers=member.headers)).json() == []
    twice = await client.delete(
        f"/api/v1/teams/{team_id}/users/{member.email}", headers=operator.headers
    )
    assert twice.status_code == 404


async def test_duplicate_team_name_is_409(client: httpx.AsyncClient, operator: Actor) -> None:
    assert (
        await client.post("/api/v1/teams", json={"name": "A"}, headers=operator.headers)
    ).status_code == 201
    clash = await client.post("/api/v1/teams", json={"name": "A"}, headers=operator.headers)
    assert clash.status_code == 409
    assert "already exists" in clash.json()["detail"]
    listed = await client.get("/api/v1/teams", headers=operator.headers)
    assert [t["name"] for t in listed.json()] == ["A"]  # still one team of that name


async def test_member_cannot_manage_teams(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    team = await client.post("/api/v1/teams", json={"name": "T"}, headers=operator.headers)
    members = f"/api/v1/teams/{team.json()['id']}/users"
    refused = await client.put(f"{members}/{member.email}", headers=member.headers)
    assert refused.status_code == 403
    assert (await client.get(members, headers=operator.headers)).json() == []
    assert (
        await client.post("/api/v1/teams", json={"name": "U"}, headers=member.headers)
    ).status_code == 403
    listed = await client.get("/api/v1/teams", headers=operator.headers)
    assert [t["name"] for t in listed.json()] == ["T"]
    # Nor can a member take themselves (or anyone) out of a team.
    added = await client.put(f"{members}/{member.email}", headers=operator.headers)
    assert added.status_code == 200
    assert (
        await client.delete(f"{members}/{member.email}", headers=member.headers)
    ).status_code == 403
    kept = await client.get(members, headers=operator.headers)
    assert [u["email"] for u in kept.json()] == [member.email]


async def test_unknown_team_and_unknown_email_are_404(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    assert (
        await client.get("/api/v1/teams/999/users", headers=operator.headers)
    ).status_code == 404
    team = await client.post("/api/v1/teams", json={"name": "T"}, headers=operator.headers)
    missing = await client.put(
        f"/api/v1/teams/{team.json()['id']}/users/ghost@example.com", headers=operator.headers
    )
    assert missing.status_code == 404
    assert "ghost@example.com" in missing.json()["detail"]


async def test_a_name_is_stored_composed_so_its_two_spellings_are_one_name(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    """NFD (`e` and an accent, as a Mac may send it) and NFC `é` look the same: one name."""
    made = await client.post(
        "/api/v1/teams", json={"name": "Cafe\u0301 team"}, headers=operator.headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "Café team"
    again = await client.post("/api/v1/teams", json={"name": "Café team"}, headers=operator.headers)
    assert again.status_code == 409, again.text


async def test_a_member_removed_from_a_team_loses_its_role_and_keeps_their_other_team(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    """A team's role on a project is its members' while they are members; leaving one team
    leaves the user's other teams, and their roles, as they were."""
    h, who = operator.headers, matter.outsider
    strong = (await client.post("/api/v1/teams", json={"name": "Strong"}, headers=h)).json()["id"]
    weak = (await client.post("/api/v1/teams", json={"name": "Weak"}, headers=h)).json()["id"]
    for team, role in ((strong, "Read Write"), (weak, "Read Only")):
        added = await client.put(f"/api/v1/teams/{team}/users/{who.email}", headers=h)
        assert added.status_code == 200, added.text
        granted = await client.put(matter.url(f"/teams/{team}"), json={"role": role}, headers=h)
        assert granted.status_code == 200, granted.text
    assert (await client.get(matter.url(), headers=who.headers)).json()["role"] == "Read Write"

    removed = await client.delete(f"/api/v1/teams/{strong}/users/{who.email}", headers=h)
    assert removed.status_code == 204, removed.text
    assert (await client.get(matter.url(), headers=who.headers)).json()["role"] == "Read Only"
    refused = await upload(client, matter, actor=who)
    assert refused.status_code == 403, refused.text
    assert (await client.get(matter.url("/documents"), headers=h)).json() == []
    kept = await client.get(f"/api/v1/teams/{weak}/users", headers=h)
    assert [u["email"] for u in kept.json()] == [who.email]

    removed = await client.delete(f"/api/v1/teams/{weak}/users/{who.email}", headers=h)
    assert removed.status_code == 204, removed.text
    assert (await client.get(matter.url(), headers=who.headers)).status_code == 404
