"""Fixtures for the v3 tests: a project with one actor per role, a second project the
outsider owns, uploads through v1, and the vendored OpenProject schemas.

The `client` here checks every /api/v3 response it receives against those schemas (a
response hook), errors included, so no test can get a non-conforming answer unnoticed."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from casefolio.db.engine import Database
from tests.api.v3 import conformance as conformance_module
from tests.api.v3.conformance import HAL_JSON, SCHEMAS, Validate, v3_response_hook
from tests.factories import Actor, make_actor

__all__ = ["HAL_JSON", "SCHEMAS", "Validate"]


def basic(actor: Actor) -> dict[str, str]:
    """OpenProject's usual scheme: HTTP Basic, user `apikey`, the token as password."""
    secret = base64.b64encode(f"apikey:{actor.token}".encode()).decode()
    return {"Authorization": f"Basic {secret}"}


@dataclass(frozen=True)
class Matter:
    """A project with one actor per role, plus an outsider who has a project of their own."""

    id: int
    admin: Actor
    writer: Actor
    reader: Actor
    outsider: Actor
    other_project_id: int


async def _grant(
    client: httpx.AsyncClient, operator: Actor, project_id: int, actor: Actor, role: str
) -> None:
    granted = await client.put(
        f"/api/v1/projects/{project_id}/users/{actor.email}",
        json={"role": role},
        headers=operator.headers,
    )
    assert granted.status_code == 200, granted.text


async def make_project(
    client: httpx.AsyncClient, operator: Actor, name: str, *, download: bool = True
) -> int:
    created = await client.post(
        "/api/v1/projects",
        json={"name": name, "settings": {"downloadViaApi": download}},
        headers=operator.headers,
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


@pytest.fixture
async def matter(client: httpx.AsyncClient, db: Database, operator: Actor) -> Matter:
    project_id = await make_project(client, operator, "Smith v Jones")
    actors = {}
    for role in ("Project Admin", "Read Write", "Read Only"):
        actors[role] = await make_actor(db, name=f"{role} Person")
        await _grant(client, operator, project_id, actors[role], role)
    outsider = await make_actor(db, name="Otto Outsider")
    other = await make_project(client, operator, "Doe v Roe")
    await _grant(client, operator, other, outsider, "Project Admin")
    return Matter(
        id=project_id,
        admin=actors["Project Admin"],
        writer=actors["Read Write"],
        reader=actors["Read Only"],
        outsider=outsider,
        other_project_id=other,
    )


async def upload_v1(
    client: httpx.AsyncClient,
    project_id: int,
    actor: Actor,
    content: bytes = b"%PDF-1.7 exhibit",
    name: str = "exhibit.pdf",
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """File a document through v1 (multipart) and return its v1 JSON."""
    response = await client.post(
        f"/api/v1/projects/{project_id}/documents",
        files={
            "metadata": (None, json.dumps(metadata or {}), "application/json"),
            "file": (name, content, "application/pdf"),
        },
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def add_attachment_v3(
    client: httpx.AsyncClient,
    document_id: int,
    actor: Actor,
    content: bytes = b"second version",
    metadata: dict[str, Any] | None = None,
    file_name: str = "part.txt",
    content_type: str = "text/plain",
) -> httpx.Response:
    meta = {"fileName": "v2.txt"} if metadata is None else metadata
    return await client.post(
        f"/api/v3/documents/{document_id}/attachments",
        files={
            "metadata": (None, json.dumps(meta), "application/json"),
            "file": (file_name, content, content_type),
        },
        headers=basic(actor),
    )


@pytest.fixture(scope="session")
def validate() -> Validate:
    """validate("document.json", payload) raises ValidationError unless the payload conforms."""
    return conformance_module.validate


@dataclass
class Conformance:
    """What the response hook checked: (method, path, status) of each /api/v3 response."""

    checked: list[tuple[str, str, int]]


@pytest.fixture
def conformance() -> Conformance:
    return Conformance(checked=[])


@pytest.fixture
async def client(app: FastAPI, conformance: Conformance) -> AsyncIterator[httpx.AsyncClient]:
    """The app's client, with a hook that validates every /api/v3 response it receives."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [v3_response_hook(conformance.checked)]},
    ) as http:
        yield http
