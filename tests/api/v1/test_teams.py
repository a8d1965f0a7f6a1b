from __future__ import annotations

import httpx

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


async def test_member_cannot_manage_teams(
    client: httpx.AsyncClient, operator: Actor, member: Actor
) -> None:
    team = await client.post("/api/v1/teams", json={"name": "T"}, headers=operator.headers)
    refused = await client.put(
        f"/api/v1/teams/{team.json()['id']}/users/{member.email}", headers=member.headers
    )
    assert refused.status_code == 403
    assert (
        await client.post("/api/v1/teams", json={"name": "U"}, headers=member.headers)
    ).status_code == 403


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
