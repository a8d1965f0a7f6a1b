from __future__ import annotations

import httpx

from tests.factories import Actor


async def test_roles_lists_the_three_built_in_roles(
    client: httpx.AsyncClient, member: Actor
) -> None:
    roles = await client.get("/api/v1/roles", headers=member.headers)
    assert roles.status_code == 200
    by_name = {r["name"]: r for r in roles.json()}
    assert set(by_name) == {"Read Only", "Read Write", "Project Admin"}
    assert by_name["Read Only"]["capabilities"] == ["documents.read"]
    assert "documents.delete" in by_name["Project Admin"]["capabilities"]


async def test_create_one_user_returns_object(client: httpx.AsyncClient, operator: Actor) -> None:
    created = await client.post(
        "/api/v1/users", json={"email": "Ann@Example.com", "name": "Ann"}, headers=operator.headers
    )
    assert created.status_code == 201
    body = created.json()
    assert isinstance(body, dict) and isinstance(body["id"], str)
    by_id = await client.get(f"/api/v1/user/id/{body['id']}", headers=operator.headers)
    assert by_id.json()["name"] == "Ann"
    by_email = await client.get(
        "/api/v1/user/byemail", params={"email": "ann@EXAMPLE.com"}, headers=operator.headers
    )
    assert by_email.status_code == 200 and by_email.json()["id"] == body["id"]


async def test_create_user_list_is_all_or_nothing(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    batch = [
        {"email": "b1@example.com", "name": "B1"},
        {"email": "b2@example.com", "name": "B2"},
    ]
    created = await client.post("/api/v1/users", json=batch, headers=operator.headers)
    assert created.status_code == 201 and len(created.json()) == 2

    clash = [
        {"email": "b3@example.com", "name": "B3"},
        {"email": "B1@example.com", "name": "again"},
    ]
    refused = await client.post("/api/v1/users", json=clash, headers=operator.headers)
    assert refused.status_code == 409
    assert "b1@example.com" in refused.json()["detail"].lower()
    missing = await client.get(
        "/api/v1/user/byemail", params={"email": "b3@example.com"}, headers=operator.headers
    )
    assert missing.status_code == 404
    # Twice in one request: no such user exists (it said "already exists").
    twice = [
        {"email": "b4@example.com", "name": "B4"},
        {"email": "B4@example.com", "name": "again"},
    ]
    refused = await client.post("/api/v1/users", json=twice, headers=operator.headers)
    assert refused.status_code == 409
    assert "is in this request twice" in refused.json()["detail"], refused.text
    assert "already exists" not in refused.json()["detail"]


async def test_invalid_email_is_400_naming_the_field(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    bad = await client.post(
        "/api/v1/users", json={"email": "not-an-email", "name": "X"}, headers=operator.headers
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "email"


async def test_wrong_types_are_400_not_422(client: httpx.AsyncClient, operator: Actor) -> None:
    bad = await client.post(
        "/api/v1/users", json={"email": ["x"], "name": 5}, headers=operator.headers
    )
    assert bad.status_code == 400
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"email", "name"} <= {f.split(".")[-1] for f in fields}


async def test_member_cannot_create_users(client: httpx.AsyncClient, member: Actor) -> None:
    refused = await client.post(
        "/api/v1/users", json={"email": "c@example.com", "name": "C"}, headers=member.headers
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only an operator can create users."


async def test_unknown_user_is_404_and_bad_id_is_400(
    client: httpx.AsyncClient, member: Actor
) -> None:
    assert (await client.get("/api/v1/user/id/99999", headers=member.headers)).status_code == 404
    bad = await client.get("/api/v1/user/id/abc", headers=member.headers)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "userId"
    unknown = await client.get(
        "/api/v1/user/byemail", params={"email": "nobody@example.com"}, headers=member.headers
    )
    assert unknown.status_code == 404


async def test_an_address_is_found_however_it_is_spelled_as_it_was_created(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    """Creation stores an address in its normal form (NFC, the domain in Unicode); looking
    one up, granting by it and creating it again compare in that form too."""
    decomposed = "Jose\u0301@example.com"  # NFD, as macOS keyboards may send it
    created = await client.post(
        "/api/v1/users", json={"email": decomposed, "name": "José"}, headers=operator.headers
    )
    assert created.status_code == 201, created.text
    punycode = await client.post(
        "/api/v1/users",
        json={"email": "x@xn--bcher-kva.example", "name": "X"},
        headers=operator.headers,
    )
    assert punycode.status_code == 201, punycode.text
    for spelled, user in (
        (decomposed, created),
        ("JOSÉ@example.com", created),
        ("x@xn--bcher-kva.example", punycode),
        ("x@bücher.example", punycode),
    ):
        found = await client.get(
            "/api/v1/user/byemail", params={"email": spelled}, headers=operator.headers
        )
        assert found.status_code == 200, (spelled, found.text)
        assert found.json()["id"] == user.json()["id"]
    again = await client.post(
        "/api/v1/users", json={"email": "José@example.com", "name": "J"}, headers=operator.headers
    )
    assert again.status_code == 409
    everyone = await client.get("/api/v1/users", params={"limit": 100}, headers=operator.headers)
    assert [u["email"] for u in everyone.json()].count("José@example.com") == 1
