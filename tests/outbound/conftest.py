"""Fixtures and helpers of the outbound tests: webhooks may point at 127.0.0.0/8 (the test
receiver)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.outbound.worker import Worker
from tests.api.v1.conftest import Matter, make_matter, matter
from tests.clocks import Clock
from tests.factories import Actor
from tests.outbound.receiver import Receiver, receiver

__all__ = ["Matter", "make_matter", "matter"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings, with the loopback network allowed for webhook URLs."""
    return settings.model_copy(
        update={"webhook_allowed_networks": ["127.0.0.0/8"], "webhook_timeout_seconds": 5.0}
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def worker(settings: Settings, db: Database, clock: Clock) -> AsyncIterator[Worker]:
    """A worker on the test's clock, with a seeded jitter."""
    made = Worker(settings, db, clock=clock, rng=random.Random(1))
    yield made
    await made.close()


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


async def register_webhook(
    client: httpx.AsyncClient, actor: Actor, url: str, events: list[str], **extra: Any
) -> dict[str, Any]:
    made = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": events, **extra}, headers=actor.headers
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def upload_file(client: httpx.AsyncClient, matter: Matter, name: str = "a.txt") -> str:
    """Upload a one-byte file as the matter's writer; return the document's id."""
    made = await client.post(
        matter.url(f"/documents?fileName={name}"), content=b"x", headers=matter.writer.headers
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def feed_cursor(client: httpx.AsyncClient, actor: Actor) -> str:
    got = await client.get("/api/v1/changes/cursor", headers=actor.headers)
    assert got.status_code == 200, got.text
    return str(got.json()["cursor"])


async def changes_since(
    client: httpx.AsyncClient, actor: Actor, cursor: str, **query: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every change after `cursor`, following pages; return them and the last cursor."""
    found: list[dict[str, Any]] = []
    while True:
        got = await client.get(
            "/api/v1/changes", params={"cursor": cursor, **query}, headers=actor.headers
        )
        assert got.status_code == 200, got.text
        body = got.json()
        found += body["changes"]
        cursor = body["nextCursor"]
        if not body["hasMore"]:
            return found, cursor
