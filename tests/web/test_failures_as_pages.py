"""A failure that is not a refusal (here: another process holding SQLite's write lock past
the wait) reaches a person as a page saying what the API says, not as the API's JSON; so do
an address no page answers and a URL refused before any route, for a browser."""

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
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"sqlite_lock_wait_seconds": 0.2})


async def test_a_busy_database_is_a_page_with_retry_after_and_nothing_is_made(
    settings: Settings,
    is_postgres: bool,
    person: MakePerson,
    operator: Actor,
    client: httpx.AsyncClient,
) -> None:
    if is_postgres:
        pytest.skip("SQLite's write lock, held by another process")
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


BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/projectz", 404, "There is no resource at /projectz."),
        ("/search?q=%00", 400, "q:"),
        ("/search?q=%FF", 400, "not UTF-8"),
    ],
)
async def test_a_browser_gets_a_page_for_an_address_no_page_answers(
    client: httpx.AsyncClient, path: str, status: int, says: str
) -> None:
    page = await client.get(path, headers=BROWSER)
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert says in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    # A client that does not ask for HTML, and any address of the APIs, keep the problem.
    for plain, headers in ((path, {}), ("/api/v1" + path, BROWSER)):
        problem = await client.get(plain, headers=headers)
        assert problem.headers["content-type"] == "application/problem+json"


async def test_a_page_route_answers_405_with_allow(person: MakePerson, member: Actor) -> None:
    someone = await person(member)
    refused = await someone.http.get("/signout", headers=BROWSER)
    assert refused.status_code == 405
    assert refused.headers["content-type"].startswith("text/html")
    assert refused.headers["allow"] == "POST"
