"""Web page fixtures: people with passwords, each in a browser-like client of their own
(cookies kept), over the real ASGI app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from casefolio.db.engine import Database
from casefolio.domain import accounts, users
from tests.factories import Actor

PASSWORD = "correct horse battery"
Browser = Callable[[], Awaitable[httpx.AsyncClient]]


@dataclass
class Person:
    actor: Actor
    http: httpx.AsyncClient
    csrf: str = ""

    async def sign_in(self, password: str = PASSWORD) -> httpx.Response:
        response = await self.http.post(
            "/signin", data={"email": self.actor.email, "password": password}
        )
        if response.status_code == 303:
            page = await self.http.get("/account")
            self.csrf = csrf_of(page.text)
        return response

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(path, data={"csrf": self.csrf, **(data or {})})


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def give_password(db: Database, email: str, password: str = PASSWORD) -> None:
    new = await accounts.hashed(password)
    async with db.write() as session:
        user = await users.get_by_email(session, email=email)
        await accounts.set_password(session, user=user, password=new)


@pytest.fixture
async def browsers(app: FastAPI) -> AsyncIterator[Browser]:
    """Make clients with cookie jars of their own, closed afterwards."""
    made: list[httpx.AsyncClient] = []

    async def make() -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
async def person(db: Database, browsers: Browser) -> Callable[[Actor], Awaitable[Person]]:
    """Given an actor, return them signed in to the pages (with a password of their own)."""

    async def sign_in(actor: Actor) -> Person:
        await give_password(db, actor.email)
        someone = Person(actor, await browsers())
        response = await someone.sign_in()
        assert response.status_code == 303, response.text
        return someone

    return sign_in
