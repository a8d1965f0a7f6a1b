"""Every project-scoped /api/v1 route by every kind of caller: 401, 404, 403 or success.

One table drives it, so a new route that forgets its permission check fails here by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from casefolio.db.engine import Database
from tests.api.v1.conftest import Matter, make_matter, upload
from tests.factories import Actor

READ, WRITE, DELETE = "documents.read", "documents.write", "documents.delete"
FIELDS, FOLDERS = "fields.write", "folders.write"
MEMBERS, SETTINGS = "members.manage", "settings.manage"
HOLDS = "holds.manage"

CAPABILITIES = {
    "reader": {READ},
    "writer": {READ, WRITE, FIELDS, FOLDERS},
    "admin": {READ, WRITE, FIELDS, FOLDERS, DELETE, MEMBERS, SETTINGS, HOLDS},
    "operator": {READ, WRITE, FIELDS, FOLDERS, DELETE, MEMBERS, SETTINGS, HOLDS},
}


@dataclass(frozen=True)
class Scene:
    matter: Matter
    folder: str
    empty_folder: str
    document: str
    old_version: str
    field: str
    team: str


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    capability: str
    json: Any = None
    raw: bytes | None = None


ROUTES = {
    "read project": Route("GET", "", READ),
    "update project": Route("PATCH", "", SETTINGS, json={"description": "x"}),
    "list users": Route("GET", "/users", READ),
    "grant user": Route("PUT", "/users/{outsider}", MEMBERS, json={"role": "Read Only"}),
    "revoke user": Route("DELETE", "/users/{reader}", MEMBERS),
    "list teams": Route("GET", "/teams", READ),
    "grant team": Route("PUT", "/teams/{team}", MEMBERS),
    "revoke team": Route("DELETE", "/teams/{team}", MEMBERS),
    "list folders": Route("GET", "/folders", READ),
    "create folder": Route("POST", "/folders", FOLDERS, json={"name": "New"}),
    "read folder": Route("GET", "/folders/Evidence", READ),
    "delete folder": Route("DELETE", "/folders/{empty_folder}", FOLDERS),
    "list fields": Route("GET", "/fields", READ),
    "create field": Route("POST", "/fields", SETTINGS, json={"name": "New", "type": "text"}),
    "list documents": Route("GET", "/documents", READ),
    "list folder documents": Route("GET", "/documents/folder/{folder}", READ),
    "upload document": Route("POST", "/documents?fileName=n.txt", WRITE, raw=b"new"),
    "read document": Route("GET", "/documents/{document}", READ),
    "update document": Route("PATCH", "/documents/{document}", WRITE, json={"title": "T"}),
    "delete document": Route("DELETE", "/documents/{document}", DELETE),
    "move document": Route("PUT", "/documents/{document}/{folder}", WRITE),
    "replace document": Route(
        "POST", "/documents/{document}/replace?fileName=r.txt", WRITE, raw=b"r"
    ),
    "set field value": Route(
        "PUT", "/documents/{document}/fields/{field}", FIELDS, json={"value": "v"}
    ),
    "download document": Route("GET", "/documents/{document}/content", READ),
    "list versions": Route("GET", "/documents/{document}/versions", READ),
    "read version": Route("GET", "/documents/{document}/versions/{old_version}", READ),
    "delete version": Route("DELETE", "/documents/{document}/versions/{old_version}", DELETE),
    "download version": Route("GET", "/documents/{document}/versions/{old_version}/content", READ),
    "list holds": Route("GET", "/holds", HOLDS),
    "place hold": Route(
        "POST", "/holds", HOLDS, json={"name": "H", "reason": "R", "scope": "project"}
    ),
}
CALLERS = ["anonymous", "outsider", "reader", "writer", "admin", "operator"]


async def build_scene(client: httpx.AsyncClient, matter: Matter, operator: Actor) -> Scene:
    """A project with a folder, an empty folder, a field, a two-version document and a team
    granted Read Only on it."""
    h = operator.headers
    folder = await client.post(matter.url("/folders"), json={"name": "Evidence"}, headers=h)
    empty = await client.post(matter.url("/folders"), json={"name": "Empty"}, headers=h)
    field = await client.post(
        matter.url("/fields"), json={"name": "Note", "type": "text"}, headers=h
    )
    doc = await upload(client, matter, b"v1", actor=operator)
    document = doc.json()["id"]
    await client.post(
        matter.url(f"/documents/{document}/replace"),
        content=b"v2",
        params={"fileName": "v2.txt"},
        headers=h,
    )
    await client.put(matter.url(f"/documents/{document}/{folder.json()['id']}"), headers=h)
    team = await client.post("/api/v1/teams", json={"name": f"Team {matter.id}"}, headers=h)
    granted = await client.put(
        matter.url(f"/teams/{team.json()['id']}"), json={"role": "Read Only"}, headers=h
    )
    assert granted.status_code == 200, granted.text
    return Scene(
        matter=matter,
        folder=folder.json()["id"],
        empty_folder=empty.json()["id"],
        document=document,
        old_version=doc.json()["currentVersion"]["id"],
        field=field.json()["id"],
        team=team.json()["id"],
    )


def _headers(caller: str, scene: Scene, operator: Actor) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    actor = operator if caller == "operator" else getattr(scene.matter, caller)
    return dict(actor.headers)


@pytest.mark.parametrize("name", list(ROUTES))
async def test_route_enforces_access(
    client: httpx.AsyncClient, db: Database, operator: Actor, name: str
) -> None:
    route = ROUTES[name]
    scene: Scene | None = None
    for caller in CALLERS:
        # A fresh project per caller that may change things, so each sees the same state.
        if scene is None:
            scene = await build_scene(client, await make_matter(client, db, operator), operator)
        response = await _call(client, route, scene, _headers(caller, scene, operator))
        status = response.status_code
        if caller == "anonymous":
            expected = {401}
        elif caller == "outsider":
            expected = {404}
        elif route.capability in CAPABILITIES[caller]:
            expected = {200, 201, 204}
        else:
            expected = {403}
        assert status in expected, (
            f"{route.method} {route.path} as {caller}: {status} {response.text}"
        )
        if status == 403:
            detail = response.json()["detail"]
            assert route.capability in detail, detail
            if route.method == "DELETE" and route.capability == DELETE:
                assert detail.startswith("You do not have permission to delete this file. ")
        if route.method != "GET" and status < 300:
            scene = None


async def _call(
    client: httpx.AsyncClient, route: Route, scene: Scene, headers: dict[str, str]
) -> httpx.Response:
    m = scene.matter
    path = route.path.format(
        outsider=m.outsider.email,
        reader=m.reader.email,
        team=scene.team,
        folder=scene.folder,
        empty_folder=scene.empty_folder,
        document=scene.document,
        old_version=scene.old_version,
        field=scene.field,
    )
    return await client.request(
        route.method, m.url(path), json=route.json, content=route.raw, headers=headers
    )
