"""A failure that is not a refusal (here: another process holding SQLite's write lock past
the wait) reaches a person as a page saying what the API says, not as the API's JSON."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy.engine import make_url

from casefolio.config import Settings
from tests.factories import Actor
from tests.web.conftest import Person

MakePerson = Callable[[Actor], Awaitable[Person]]


@pytest.fixture
def settings(settings: Settings, is_postgres: bool) -> Settings:
    if is_postgres:
        pytest.skip("SQLite's write lock, held by another process")
    return settings.model_copy(update={"sqlite_lock_wait_seconds": 0.2})


async def test_a_busy_database_is_a_page_with_retry_after_and_nothing_is_made(
    settings: Settings, person: MakePerson, operator: Actor, client: httpx.AsyncClient
) -> None:
    op = await person(operator)
    path = make_url(settings.effective_database_url).database
    assert path
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        busy = await op.post("/projects", {"name": "Smith v Jones"})
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert busy.status_code == 503
    assert busy.headers["content-type"].startswith("text/html")
    assert "busy with other writes; nothing was changed" in busy.text
    assert int(busy.headers["retry-after"]) >= 1
    listed = await client.get("/api/v1/projects", headers=operator.headers)
    assert [p["name"] for p in listed.json()] == []
    made = await op.post("/projects", {"name": "Smith v Jones"})
    assert made.status_code == 303
