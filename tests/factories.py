"""Factories that make real rows through the domain layer or, given a client, the API."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.domain import system, tokens, users

_counter = itertools.count(1)


@dataclass(frozen=True)
class Actor:
    user_id: int
    email: str
    token: str
    token_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Token": self.token}


async def switch_api(db: Database, *, on: bool) -> None:
    async with db.write() as session:
        await system.update(session, who=None, integrations_api_enabled=on)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app of its own for `settings` (the suite's `app` fixture has the suite's), the
    integrations API on, and an in-process client of it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await switch_api(app.state.casefolio.db, on=True)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def make_actor(
    db: Database,
    *,
    email: str | None = None,
    name: str = "Test User",
    operator: bool = False,
    rate_limit: int | None = None,
) -> Actor:
    email = email or f"user{next(_counter)}@example.com"
    async with db.write() as session:
        [user] = await users.create_many(
            session, new_users=[users.NewUser(email, name, is_operator=operator)]
        )
        issued = await tokens.issue(
            session, who=None, user_id=user.id, name="test", rate_limit=rate_limit
        )
        return Actor(user.id, user.email, issued.secret, issued.token.id)


async def file_with_fields(
    client: httpx.AsyncClient, actor: Actor, values: dict[str, tuple[str, Any]]
) -> int:
    """Through /api/v1 (client based at the host), make a project with a field per entry of
    `values` (name -> (type, value)) and file a document carrying those values; return its id."""
    project = (
        await client.post("/api/v1/projects", json={"name": "Filed"}, headers=actor.headers)
    ).json()["id"]
    for name, (kind, _) in values.items():
        made = await client.post(
            f"/api/v1/projects/{project}/fields",
            json={"name": name, "type": kind},
            headers=actor.headers,
        )
        assert made.status_code == 201, made.text
    metadata = {"title": "Claim", "fields": {name: value for name, (_, value) in values.items()}}
    uploaded = await client.post(
        f"/api/v1/projects/{project}/documents",
        files={"file": ("claim.pdf", b"%PDF claim"), "metadata": (None, json.dumps(metadata))},
        headers=actor.headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    return int(uploaded.json()["id"])


def wait_before_budget_sequence(margin: float = 5.0) -> float:
    """Seconds to sleep before a test that expects an exact sequence of budgets, so that at
    least `margin` seconds remain in the current minute.

    Budgets count in one-minute windows (sliding window counters, api/ratelimit.py): across
    a window's end the previous window's hits are weighted and rounded down, and an exact
    sequence such as Remaining 2, 1, 0 would come out 2, 2, 1.
    """
    left = 60 - time.time() % 60
    return left + 0.05 if left < margin else 0.0
