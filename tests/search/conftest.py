"""Fixtures of the search tests: a project with one actor per role, uploads through the API,
and the worker's indexer run by hand (the test app runs no worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.search.index import Indexer
from tests.api.v1.conftest import Matter, make_matter, matter
from tests.factories import Actor

__all__ = ["Matter", "make_matter", "matter"]


@pytest.fixture
async def indexer(settings: Settings, db: Database) -> AsyncIterator[Indexer]:
    made = Indexer(settings, db)
    yield made
    await made.close()


async def index_all(indexer: Indexer) -> int:
    """Run rounds until one finds nothing to do; return how much was done."""
    total = 0
    while done := await indexer.run_once():
        total += done
    return total


async def upload(
    client: httpx.AsyncClient,
    actor: Actor,
    project_id: int,
    name: str,
    data: bytes,
    content_type: str = "text/plain",
) -> dict[str, Any]:
    """File `data` as a new document named `name` through the API; return the document."""
    made = await client.post(
        f"/api/v1/projects/{project_id}/documents?fileName={name}",
        content=data,
        headers={**actor.headers, "Content-Type": content_type},
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def replace(
    client: httpx.AsyncClient, actor: Actor, project_id: int, document: str, name: str, data: bytes
) -> None:
    """File `data` as a new version, named `name`, of `document` through the API."""
    replaced = await client.post(
        f"/api/v1/projects/{project_id}/documents/{document}/replace?fileName={name}",
        content=data,
        headers={**actor.headers, "Content-Type": "text/plain"},
    )
    assert replaced.status_code in (200, 201), replaced.text


async def search(
    client: httpx.AsyncClient, actor: Actor, q: str, **params: object
) -> httpx.Response:
    return await client.get("/api/v1/search", params={"q": q, **params}, headers=actor.headers)


async def titles(client: httpx.AsyncClient, actor: Actor, q: str, **params: object) -> set[str]:
    found = await search(client, actor, q, **params)
    assert found.status_code == 200, found.text
    return {hit["document"]["currentVersion"]["fileName"] for hit in found.json()}
