"""Project-level fixtures for the v1 tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from casefolio.db.engine import Database
from tests.factories import Actor, make_actor


@dataclass(frozen=True)
class Matter:
    """A project with one actor per role (and one without access)."""

    id: int
    admin: Actor
    writer: Actor
    reader: Actor
    outsider: Actor

    def url(self, tail: str = "") -> str:
        return f"/api/v1/projects/{self.id}{tail}"


@pytest.fixture
async def matter(client: httpx.AsyncClient, db: Database, operator: Actor) -> Matter:
    return await make_matter(client, db, operator)


async def make_matter(client: httpx.AsyncClient, db: Database, operator: Actor) -> Matter:
    """Create a project and one actor per role on it, plus an outsider."""
    created = await client.post(
        "/api/v1/projects",
        json={"name": "Smith v Jones", "settings": {"downloadViaApi": True}},
        headers=operator.headers,
    )
    assert created.status_code == 201, created.text
    project_id = int(created.json()["id"])
    actors = {}
    for role in ("Project Admin", "Read Write", "Read Only"):
        actor = await make_actor(db)
        granted = await client.put(
            f"/api/v1/projects/{project_id}/users/{actor.email}",
            json={"role": role},
            headers=operator.headers,
        )
        assert granted.status_code == 200, granted.text
        actors[role] = actor
    return Matter(
        id=project_id,
        admin=actors["Project Admin"],
        writer=actors["Read Write"],
        reader=actors["Read Only"],
        outsider=await make_actor(db),
    )


async def upload(
    client: httpx.AsyncClient,
    matter: Matter,
    content: bytes = b"%PDF-1.7 exhibit",
    name: str = "exhibit.pdf",
    actor: Actor | None = None,
    **params: str,
) -> httpx.Response:
    return await client.post(
        matter.url("/documents"),
        content=content,
        params={"fileName": name, **params},
        headers={**(actor or matter.writer).headers, "Content-Type": "application/pdf"},
    )


async def file_version(
    client: httpx.AsyncClient,
    matter: Matter,
    doc: str,
    content: bytes,
    name: str = "v2.txt",
    actor: Actor | None = None,
) -> None:
    """File `content` as a new version of `doc`, as the writer (or `actor`); it is taken."""
    replaced = await client.post(
        matter.url(f"/documents/{doc}/replace"),
        params={"fileName": name},
        content=content,
        headers=(actor or matter.writer).headers,
    )
    assert replaced.status_code in (200, 201), replaced.text


async def upload_with_metadata(
    client: httpx.AsyncClient,
    matter: Matter,
    file: tuple[str, bytes, str],
    metadata: dict[str, Any],
) -> httpx.Response:
    """Upload as the writer, multipart: the `file` part (name, bytes, type) and `metadata`."""
    return await client.post(
        matter.url("/documents"),
        files={"file": file, "metadata": (None, json.dumps(metadata), "application/json")},
        headers=matter.writer.headers,
    )
