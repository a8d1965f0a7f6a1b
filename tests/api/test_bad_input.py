"""Every route of both dialects, walked with a table of hostile values in its path, its query
and its body: never a 5xx, every error in the dialect's format (problem+json in /api/v1, an
OpenProject error object in /api/v3), and nothing stored by a refused request.

The routes come from `app.routes`, their query parameters and JSON body fields from FastAPI's
own description of them, so a new route is walked without touching this module. The caller
is an operator on a project where everything is allowed, so each value reaches the handler's
own checks instead of stopping at a 403. Requests whose success would destroy the fixtures
(DELETE with valid ids) are only sent with hostile path parameters.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.domain import tokens
from tests import servers
from tests.api.snapshots import snapshot
from tests.factories import Actor, make_actor, switch_api
from tests.hostile import CURSOR_VALUES

# Values as they go into a URL: already percent-encoded, sent as they are.
URL_VALUES = [
    "a%00b",  # NUL
    "%ED%A0%80",  # a surrogate's UTF-8 bytes (invalid UTF-8)
    "9" * 40,  # a number no database holds
    "-1",
    "x" * 5000,  # a huge string
    "%01%1F%7F%C2%85%E2%80%AE",  # C0, DEL, C1 and a bidi override
    "%5B" * 3000,  # "[" nested past any parser's patience
    "%7B%22a%22%3A",  # JSON cut short
    "true",  # a wrong type
]

SURROGATE = "\ud800"
DEEP = "[" * 100_000
# Values of a JSON body field.
JSON_VALUES: list[Any] = [
    "a\x00b",
    SURROGATE,  # sent as the escape "\ud800": httpx cannot encode a lone surrogate
    "x" * 200_000,
    10**40,
    -1,
    1.5,
    True,
    None,
    [],
    {},
    "\x01\x1f\x7f\x85\u202e\u2066",
    json.loads("[" * 70 + "]" * 70),
]
# Whole JSON bodies, as bytes.
RAW_BODIES = [
    DEEP.encode(),
    b'"\\ud800"',
    b'{"a": "\\u0000"}',
    b"\xff\xfe\x00",
    b"1e999999",
    b"{",
    b"[]",
    b"null",
]
# What the handler reads itself (no declared body model), for the fields it knows.
HANDLER_BODY_FIELDS = {"/api/v3/documents/{document_id}": ["title", "description"]}
MULTIPART_FIELDS = ["title", "fileName", "description", "folderId", "contentType", "fields"]


@dataclass
class Walk:
    client: httpx.AsyncClient
    db: Database
    headers: dict[str, str]
    ids: dict[str, str]
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    state: Any = None

    async def check(self, method: str, url: str, **request: Any) -> None:
        """Send one request; it must not be a 5xx, an error must be in the dialect's format,
        and a refused request must have stored nothing."""
        if self.state is None:
            self.state = await snapshot(self.db)
        headers = {**self.headers, **request.pop("headers", {})}
        response = await self.client.request(method, url, headers=headers, **request)
        self.sent += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        where = f"{method} {url[:200]} {str(request)[:200]}"
        assert response.status_code < 500, f"{where}: {response.text[:500]}"
        if response.status_code >= 400:
            assert_dialect_error(url, response, where)
            after = await snapshot(self.db)
            assert after == self.state, f"{where} was refused but changed the database"
        else:
            self.state = await snapshot(self.db)


def assert_dialect_error(url: str, response: httpx.Response, where: str) -> None:
    body = response.json()
    media = response.headers["content-type"]
    if urlsplit(url).path.startswith("/api/v3"):
        assert media.startswith("application/hal+json"), where
        assert body["_type"] == "Error", where
        assert body["errorIdentifier"].startswith("urn:openproject-org:api:v3:errors:"), where
        assert body["message"], where
    else:
        assert media == "application/problem+json", where
        assert body["status"] == response.status_code, where
        assert body["title"] and body["detail"], where


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api/"):
            yield route


def query_names(dependant: Dependant) -> list[str]:
    own = [f.alias for f in dependant.query_params]
    return own + [name for sub in dependant.dependencies for name in query_names(sub)]


def body_fields(route: APIRoute) -> list[str]:
    if route.body_field is None:
        return HANDLER_BODY_FIELDS.get(route.path_format, [])
    annotation = route.body_field.field_info.annotation
    models = [annotation, *get_args(annotation)]
    models += [inner for m in list(models) for inner in get_args(m)]
    return sorted(
        {
            info.alias or name
            for model in models
            if isinstance(model, type) and issubclass(model, BaseModel)
            for name, info in model.model_fields.items()
        }
    )


def is_upload(route: APIRoute) -> bool:
    content = (route.openapi_extra or {}).get("requestBody", {}).get("content", {})
    return "multipart/form-data" in content


def fill(route: APIRoute, ids: dict[str, str], **override: str) -> str:
    path = route.path_format
    for name in route.param_convertors:
        path = path.replace("{" + name + "}", override.get(name, ids[name]))
    return path


def with_field(name: str, value: Any) -> bytes:
    if value == SURROGATE:
        return json.dumps({name: "@S@"}).replace('"@S@"', '"\\ud800"').encode()
    return json.dumps({name: value}).encode()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The walk registers a webhook on this machine: loopback must be an allowed network.
    return settings.model_copy(update={"webhook_allowed_networks": ["127.0.0.0/8"]})


@pytest.fixture
async def walk(client: httpx.AsyncClient, db: Database) -> Walk:
    # Operators may do everything, and this one's budget does not run out mid-walk.
    actor: Actor = await make_actor(
        db, email="walker@example.com", operator=True, rate_limit=tokens.MAX_RATE_LIMIT
    )
    await switch_api(db, on=True)
    headers = actor.headers
    member = await make_actor(db, email="member@example.com")

    async def answer(method: str, url: str, **request: Any) -> Any:
        response = await client.request(method, url, headers=headers, **request)
        assert response.status_code in (200, 201, 202), response.text
        return response.json()

    async def made(method: str, url: str, **request: Any) -> dict[str, Any]:
        body: dict[str, Any] = await answer(method, url, **request)
        return body

    project = await made(
        "POST", "/api/v1/projects", json={"name": "Walked", "settings": {"downloadViaApi": True}}
    )
    p = project["id"]
    folder = await made("POST", f"/api/v1/projects/{p}/folders", json={"name": "Pleadings"})
    field_row = await made(
        "POST", f"/api/v1/projects/{p}/fields", json={"name": "Custodian", "type": "text"}
    )
    document = await made(
        "POST",
        f"/api/v1/projects/{p}/documents",
        files={"file": ("exhibit.txt", b"exhibit", "text/plain")},
    )
    team = await made("POST", "/api/v1/teams", json={"name": "Litigation"})
    await made("PUT", f"/api/v1/teams/{team['id']}/users/{member.email}")
    await made("PUT", f"/api/v1/projects/{p}/users/{member.email}")
    version = document["currentVersion"]["id"]
    webhook = await made(
        "POST",
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["document.created"]},
    )
    await made("POST", f"/api/v1/webhooks/{webhook['id']}/test")
    deliveries = await answer("GET", f"/api/v1/webhooks/{webhook['id']}/deliveries")
    hold = await made(
        "POST",
        f"/api/v1/projects/{p}/holds",
        json={"name": "Walk", "reason": "r", "scope": "document", "targetId": document["id"]},
    )
    ids = {
        "projectId": p,
        "project_ref": p,
        "documentId": document["id"],
        "document_id": document["id"],
        "folderId": folder["id"],
        "folderName": "Pleadings",
        "fieldId": field_row["id"],
        "versionId": version,
        "attachment_id": version,
        "teamId": team["id"],
        "userId": str(member.user_id),
        "user_ref": "me",
        "tokenId": str(member.token_id),
        "email": member.email,
        "webhookId": str(webhook["id"]),
        "deliveryId": str(deliveries[0]["id"]),
        "holdId": hold["id"],
    }
    return Walk(client, db, headers, ids)


async def test_every_route_survives_hostile_input(app: FastAPI, walk: Walk) -> None:
    routes = list(api_routes(app))
    assert len(routes) > 50  # both dialects, every verb
    for route in routes:
        for method in sorted(route.methods or ()):
            await walk_route(walk, route, method)
    # The walk reached the handlers' own checks, not just the front door.
    assert walk.statuses.get(400, 0) > 500, walk.statuses
    assert walk.sent > 1000


async def walk_route(walk: Walk, route: APIRoute, method: str) -> None:
    for name in route.param_convertors:
        for value in URL_VALUES:
            await walk.check(method, fill(route, walk.ids, **{name: value}))
    if method == "DELETE":
        return  # with valid ids, it would succeed and take the fixtures with it
    url = fill(route, walk.ids)
    for name in query_names(route.dependant):
        for value in URL_VALUES + (CURSOR_VALUES if name == "cursor" else []):
            await walk.check(method, f"{url}?{name}={value}")
    if method not in ("POST", "PUT", "PATCH"):
        return
    if is_upload(route):
        await walk_upload(walk, method, url)
        return
    json_type = {"Content-Type": "application/json"}
    for raw in RAW_BODIES:
        await walk.check(method, url, content=raw, headers=json_type)
    for name in body_fields(route):
        for value in JSON_VALUES:
            await walk.check(method, url, content=with_field(name, value), headers=json_type)


async def walk_upload(walk: Walk, method: str, url: str) -> None:
    file_part = ("brief.txt", b"bytes", "text/plain")
    many = {f"extra{i}": (None, b"") for i in range(2000)}
    await walk.check(method, url, files={**many, "file": file_part})
    await walk.check(method, url, files={"file": file_part, "metadata": (None, DEEP.encode())})
    for name in MULTIPART_FIELDS:
        for value in JSON_VALUES:
            metadata = (None, with_field(name, value), "application/json")
            await walk.check(method, url, files={"metadata": metadata, "file": file_part})
    hostile_name = "..\\..\\\x01e\u202evil\x85.txt"
    await walk.check(method, url, files={"file": (hostile_name, b"x", "text/plain")})


@pytest.fixture
def served(tmp_path: Path, settings: Settings, is_postgres: bool) -> Iterator[tuple[str, str]]:
    data = tmp_path / "served"
    url = settings.effective_database_url if is_postgres else f"sqlite:///{data / 'casefolio.db'}"
    env = servers.server_env(data, url, rate_limit_per_minute="1000")
    servers.cli(env, "migrate")
    token = servers.init_token(env)
    with servers.running_server(env) as server:
        yield server.base_url, token


def test_a_refusal_keeps_the_connection_alive_on_a_real_server(
    served: tuple[str, str],
) -> None:
    base_url, token = served
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    headers = {"X-API-Token": token, "Content-Type": "application/json"}
    with httpx.Client(base_url=base_url, headers={"X-API-Token": token}) as web:
        project = web.post("/api/v1/projects", json={"name": "Kept alive"}).json()["id"]
        document = web.post(
            f"/api/v1/projects/{project}/documents", files={"file": ("a.txt", b"a")}
        ).json()["id"]
    try:
        connection.request("GET", "/api/v3", headers=headers)
        connection.getresponse().read()
        socket = connection.sock
        for body in (DEEP.encode(), b'{"title": "\\udfff"}'):
            connection.request("PATCH", f"/api/v3/documents/{document}", body=body, headers=headers)
            refused = connection.getresponse()
            refused.read()
            assert refused.status == 400, refused.status
            assert refused.getheader("connection", "").lower() != "close"
            connection.request("GET", "/api/v3/documents?filters=" + "%5B" * 3000, headers=headers)
            bad_query = connection.getresponse()
            bad_query.read()
            assert bad_query.status == 400
            connection.request("GET", "/api/v3", headers=headers)
            fine = connection.getresponse()
            fine.read()
            assert fine.status == 200
        assert connection.sock is socket  # one connection all along
    finally:
        connection.close()
