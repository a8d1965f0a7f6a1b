"""Who may call /api/v3, and what the refusals look like."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from casefolio.db.engine import Database
from tests.api.v3.conftest import HAL_JSON, Matter, basic, upload_v1
from tests.factories import Actor, switch_api

ERRORS = "urn:openproject-org:api:v3:errors:"
ROUTES = [
    ("GET", "/api/v3"),
    ("GET", "/api/v3/users/me"),
    ("GET", "/api/v3/users/1"),
    ("GET", "/api/v3/projects"),
    ("GET", "/api/v3/projects/1"),
    ("GET", "/api/v3/documents"),
    ("GET", "/api/v3/documents/1"),
    ("PATCH", "/api/v3/documents/1"),
    ("GET", "/api/v3/documents/1/attachments"),
    ("POST", "/api/v3/documents/1/attachments"),
    ("GET", "/api/v3/attachments/1"),
    ("DELETE", "/api/v3/attachments/1"),
    ("GET", "/api/v3/attachments/1/content"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_answers_401_without_credentials(
    client: httpx.AsyncClient, operator: Actor, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 401, f"{method} {path}: {response.text}"
    assert response.headers["www-authenticate"] == 'Basic realm="OpenProject API"'
    assert response.headers["content-type"] == HAL_JSON
    assert response.json() == {
        "_type": "Error",
        "errorIdentifier": ERRORS + "Unauthenticated",
        "message": "You need to be authenticated to access this resource.",
    }


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic " + base64.b64encode(b"apikey:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"someone:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"apikey:").decode()},
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer wrong"},
        {"X-API-Token": "wrong"},
    ],
)
async def test_wrong_credentials_are_401_with_openprojects_message(
    client: httpx.AsyncClient, operator: Actor, headers: dict[str, str]
) -> None:
    response = await client.get("/api/v3/documents", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="OpenProject API"'
    assert response.json()["message"] == "You did not provide the correct credentials."


async def test_basic_user_other_than_apikey_is_not_a_token(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    secret = base64.b64encode(f"admin:{operator.token}".encode()).decode()
    response = await client.get("/api/v3", headers={"Authorization": f"Basic {secret}"})
    assert response.status_code == 401
    # OpenProject's BasicAuthFailure: any Basic credentials that do not authenticate.
    assert response.json()["message"] == "You did not provide the correct credentials."


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({}, "You need to be authenticated to access this resource."),
        ({"X-API-Token": "wrong"}, "You did not provide the correct credentials."),
    ],
)
@pytest.mark.parametrize(
    ("asked", "challenge"),
    [
        ("Session", 'Session realm="OpenProject API"'),
        ("Basic", 'Basic realm="OpenProject API"'),
        ("session", 'Basic realm="OpenProject API"'),  # compared as sent, as OpenProject does
        ("Digest", 'Basic realm="OpenProject API"'),  # not a scheme OpenProject offers
    ],
)
async def test_the_401_challenge_names_the_scheme_the_client_asks_for(
    client: httpx.AsyncClient,
    operator: Actor,
    credentials: dict[str, str],
    message: str,
    asked: str,
    challenge: str,
) -> None:
    # Browser clients send X-Authentication-Scheme: Session so that a 401 does not make the
    # browser pop up its own login dialog (OpenProject's authentication_spec.rb).
    headers = {**credentials, "X-Authentication-Scheme": asked}
    response = await client.get("/api/v3/documents", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    assert response.json()["message"] == message


async def test_every_supported_scheme_authenticates(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    for headers in (
        basic(operator),
        {"Authorization": f"Bearer {operator.token}"},
        {"X-API-Token": operator.token},
    ):
        response = await client.get("/api/v3/users/me", headers=headers)
        assert response.status_code == 200, headers
        assert response.json()["id"] == operator.user_id
        assert response.json()["admin"] is True


async def test_json_accept_header_is_served_hal(client: httpx.AsyncClient, operator: Actor) -> None:
    response = await client.get(
        "/api/v3/documents", headers={**basic(operator), "Accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == HAL_JSON


async def test_responses_carry_rate_limit_headers(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    response = await client.get("/api/v3", headers=basic(operator))
    assert response.headers["ratelimit-limit"] == "50"
    assert int(response.headers["ratelimit-remaining"]) < 50


async def test_switched_off_api_is_403(
    client: httpx.AsyncClient, matter: Matter, db: Database
) -> None:
    await switch_api(db, on=False)
    response = await client.get("/api/v3/documents", headers=basic(matter.reader))
    assert response.status_code == 403
    assert response.json()["errorIdentifier"] == ERRORS + "MissingPermission"


async def test_root_links_the_caller_and_shows_the_version_to_operators_only(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    mine = (await client.get("/api/v3", headers=basic(matter.reader))).json()
    assert mine["_links"]["user"]["href"] == f"/api/v3/users/{matter.reader.user_id}"
    assert "coreVersion" not in mine
    assert "coreVersion" in (await client.get("/api/v3", headers=basic(operator))).json()


async def test_users_by_id_me_and_unknown(client: httpx.AsyncClient, matter: Matter) -> None:
    me = (await client.get("/api/v3/users/me", headers=basic(matter.reader))).json()
    assert (me["id"], me["login"], me["status"]) == (
        matter.reader.user_id,
        matter.reader.email,
        "active",
    )
    for ref in ("999999", "nobody"):
        missing = await client.get(f"/api/v3/users/{ref}", headers=basic(matter.reader))
        assert missing.status_code == 404
        assert missing.json()["message"] == (
            "The specified user does not exist or you do not have permission to view them."
        )


async def test_projects_by_id_and_identifier(client: httpx.AsyncClient, matter: Matter) -> None:
    by_id = (await client.get(f"/api/v3/projects/{matter.id}", headers=basic(matter.reader))).json()
    assert (by_id["id"], by_id["name"]) == (matter.id, "Smith v Jones")
    by_identifier = await client.get(
        f"/api/v3/projects/{by_id['identifier']}", headers=basic(matter.reader)
    )
    assert by_identifier.json()["id"] == matter.id
    assert (
        await client.get("/api/v3/projects/nope", headers=basic(matter.reader))
    ).status_code == 404


async def test_projects_collection_pages_and_filters(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    page = (await client.get("/api/v3/projects?pageSize=1", headers=basic(operator))).json()
    assert (page["total"], page["count"]) == (2, 1)
    assert page["_links"]["nextByOffset"] == {"href": "/api/v3/projects?offset=2&pageSize=1"}
    filters = json.dumps([{"id": {"operator": "=", "values": [str(matter.other_project_id)]}}])
    only = (
        await client.get("/api/v3/projects", params={"filters": filters}, headers=basic(operator))
    ).json()
    assert [p["id"] for p in only["_embedded"]["elements"]] == [matter.other_project_id]
    bad = await client.get(
        "/api/v3/projects", params={"filters": '[{"x": {}}]'}, headers=basic(operator)
    )
    assert bad.status_code == 400


async def test_unknown_v3_path_is_an_openproject_404(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    await upload_v1(client, matter.id, matter.writer)
    response = await client.get("/api/v3/work_packages", headers=basic(matter.reader))
    assert response.status_code == 404
    assert response.json()["errorIdentifier"] == ERRORS + "NotFound"
    assert response.headers["content-type"] == HAL_JSON


async def test_projects_active_filter_keeps_all_or_none(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    """Every casefolio project is active (there is no archive): `active` true lists them
    all, false none, as OpenProject clients filtering out archived projects expect."""
    for value, expected in (("t", 2), ("true", 2), ("f", 0), ("false", 0)):
        filters = json.dumps([{"active": {"operator": "=", "values": [value]}}])
        listed = await client.get(
            "/api/v3/projects", params={"filters": filters}, headers=basic(operator)
        )
        assert listed.status_code == 200, listed.text
        assert (listed.json()["total"], listed.json()["count"]) == (expected, expected), value
