"""Behaviour every /api/v1 route shares: errors, verbs, pagination, rate limits."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from casefolio.api.auth import authenticate
from casefolio.api.deps import PrincipalDep
from casefolio.api.ratelimit import RateLimiter
from casefolio.api.routing import add_routes, authenticates
from casefolio.api.v1.routing import v1_router
from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.db import migrate
from casefolio.db.engine import Database
from casefolio.domain import tokens
from tests import services
from tests.factories import Actor, make_actor, switch_api, wait_before_budget_sequence

REDIS_URL = services.redis_url(15)


def test_every_route_authenticates_once_and_the_document_read_is_tried_first(
    settings: Settings,
) -> None:
    # Each handler declares the caller itself (PrincipalDep, or a dependency built on it):
    # the routers add no authentication of their own (api/v1/routing.py).
    app = create_app(settings)
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path.startswith("/api/v")]
    assert len([r for r in routes if r.path.startswith("/api/v1")]) > 40
    assert len([r for r in routes if r.path.startswith("/api/v3")]) > 10
    for route in routes:
        assert authenticates(route.dependant), f"{route.methods} {route.path} does not authenticate"
        # Once: a second declaration is solved again on every request.
        top = [d.call for d in route.dependant.dependencies]
        assert top.count(authenticate) <= 1, f"{route.methods} {route.path} authenticates twice"
    # Matching tries routes in order: the read integrations make most comes first.
    first = app.routes[0]
    assert isinstance(first, APIRoute) and first.name == "read_document"


def test_a_router_with_a_route_that_does_not_authenticate_is_refused() -> None:
    router = v1_router("open")

    @router.get("/open")
    async def open_to_anybody() -> dict[str, str]:
        return {}

    @router.get("/closed")
    async def closed(who: PrincipalDep) -> dict[str, str]:
        return {}

    app = FastAPI()
    with pytest.raises(RuntimeError, match="/api/v1/open does not authenticate"):
        add_routes(app, router)
    assert not [r for r in app.routes if getattr(r, "path", "").startswith("/api/v1")]
    router.routes.pop(0)
    add_routes(app, router)
    assert [getattr(r, "path", "") for r in app.routes][-1] == "/api/v1/closed"


async def test_problem_json_for_unknown_route(client: httpx.AsyncClient, member: Actor) -> None:
    missing = await client.get("/api/v1/nothing-here", headers=member.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404 and "/api/v1/nothing-here" in missing.json()["detail"]


async def test_method_not_allowed_is_problem_json(client: httpx.AsyncClient, member: Actor) -> None:
    wrong = await client.put("/api/v1/roles", headers=member.headers)
    assert wrong.status_code == 405
    assert wrong.json()["title"] == "Method Not Allowed"
    assert wrong.headers["allow"] == "GET, HEAD"
    # Allow names every method of the path, not only those of the first route that matched.
    options = await client.options("/api/v1/projects", headers=member.headers)
    assert options.status_code == 405
    assert options.headers["allow"] == "GET, HEAD, POST"
    document = await client.put("/api/v1/projects/1/documents/2", headers=member.headers)
    assert document.headers["allow"] == "DELETE, GET, HEAD, PATCH, POST"


async def test_bad_json_is_400(client: httpx.AsyncClient, operator: Actor) -> None:
    bad = await client.post(
        "/api/v1/teams",
        content=b'{"name": ',
        headers={**operator.headers, "Content-Type": "application/json"},
    )
    assert bad.status_code == 400
    assert bad.json()["detail"] == "The request body is not valid JSON."


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_json_sent_as_another_type_is_a_400_that_names_the_header(
    client: httpx.AsyncClient, operator: Actor, content_type: str | None
) -> None:
    """`curl -d '{…}'` without -H sends application/x-www-form-urlencoded: the 400 said "body:
    Input should be a valid dictionary or object to extract fields from"."""
    headers = dict(operator.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    made = await client.post("/api/v1/projects", json={"name": "P"}, headers=operator.headers)
    folders = f"/api/v1/projects/{made.json()['id']}/folders"
    for url in ("/api/v1/teams", folders):  # a route FastAPI resolves, and a direct one
        bad = await client.post(url, content=b'{"name": "Review"}', headers=headers)
        assert bad.status_code == 400, bad.text
        assert "Content-Type: application/json" in bad.json()["detail"], bad.text
    assert (await client.get("/api/v1/teams", headers=operator.headers)).json() == []
    assert (await client.get(folders, headers=operator.headers)).json() == []
    # JSON in another encoding: FastAPI said "There was an error parsing the body".
    latin = {**operator.headers, "Content-Type": "application/json; charset=latin-1"}
    for url in ("/api/v1/teams", folders):
        bad = await client.post(url, content='{"name": "Café"}'.encode("latin-1"), headers=latin)
        assert bad.status_code == 400, bad.text
        assert "JSON is sent in UTF-8" in bad.json()["detail"], bad.text


async def test_head_answers_like_get_without_body(client: httpx.AsyncClient, member: Actor) -> None:
    get = await client.get("/api/v1/roles", headers=member.headers)
    head = await client.head("/api/v1/roles", headers=member.headers)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == get.headers["content-type"]
    unauth = await client.head("/api/v1/roles")
    assert unauth.status_code == 401 and unauth.content == b""


async def test_post_is_accepted_as_patch(client: httpx.AsyncClient, operator: Actor) -> None:
    renamed = await client.post(
        f"/api/v1/tokens/{operator.token_id}", json={"name": "renamed"}, headers=operator.headers
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "renamed"


async def test_pagination_walks_every_page_by_link_header(
    client: httpx.AsyncClient, operator: Actor, db: Database
) -> None:
    for _ in range(6):
        await make_actor(db)
    seen: list[str] = []
    url: str | None = "/api/v1/users?limit=3"
    pages = 0
    while url:
        page = await client.get(url, headers=operator.headers)
        assert page.status_code == 200
        assert len(page.json()) <= 3
        seen.extend(u["id"] for u in page.json())
        link = page.headers.get("link")
        url = re.match(r'<([^>]+)>; rel="next"', link).group(1) if link else None  # type: ignore[union-attr]
        pages += 1
    assert pages == 3
    assert len(seen) == 7 and len(set(seen)) == 7
    assert seen == sorted(seen, key=int)


async def test_limit_and_cursor_are_validated(client: httpx.AsyncClient, member: Actor) -> None:
    too_big = await client.get("/api/v1/users?limit=1001", headers=member.headers)
    assert too_big.status_code == 400 and too_big.json()["errors"][0]["field"] == "limit"
    garbage = await client.get("/api/v1/users?cursor=%%%not-a-cursor", headers=member.headers)
    assert garbage.status_code == 400
    assert "cursor" in garbage.json()["detail"]


async def test_every_response_carries_rate_limit_headers_and_429_retry_after(
    app: FastAPI, client: httpx.AsyncClient, operator: Actor, db: Database
) -> None:
    # The budgets count by a clock that stands 30 s into a one-minute window: no wait for
    # a window's end, and the seconds to the reset are known.
    state = app.state.casefolio
    state.limiter = RateLimiter(state.settings.rate_limit_per_minute, clock=lambda: 1_000 * 60 + 30)
    limited = await make_actor(db, rate_limit=3)
    remaining = []
    for _ in range(3):
        ok = await client.get("/api/v1/roles", headers=limited.headers)
        assert ok.status_code == 200
        assert ok.headers["RateLimit-Limit"] == "3"
        assert ok.headers["RateLimit-Reset"] == "30"
        remaining.append(int(ok.headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    refused = await client.get("/api/v1/roles", headers=limited.headers)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "30"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert "Rate limit of 3 requests per minute" in refused.json()["detail"]
    # Budgets are per token: the operator is unaffected.
    assert (await client.get("/api/v1/roles", headers=operator.headers)).status_code == 200


async def test_guessing_tokens_spends_the_callers_address_budget(
    app: FastAPI, client: httpx.AsyncClient, operator: Actor
) -> None:
    """A request without a token, or with one that is not a token, is charged to the client
    address: guessing tokens is refused once that budget is spent, as any caller is."""
    state = app.state.casefolio
    state.limiter = RateLimiter(3, clock=lambda: 1_000 * 60 + 30)
    guesses: list[dict[str, str]] = [{}, {"X-API-Token": "guess-1"}, {"X-API-Token": "guess-2"}]
    for headers in guesses:
        refused = await client.get("/api/v1/roles", headers=headers)
        assert refused.status_code == 401, refused.text
    for headers in guesses[:2]:
        limited = await client.get("/api/v1/roles", headers=headers)
        assert limited.status_code == 429, limited.text
        assert limited.headers["Retry-After"] == "30"
    # A real token has a budget of its own.
    assert (await client.get("/api/v1/roles", headers=operator.headers)).status_code == 200


async def test_two_tokens_of_one_user_have_a_budget_each(
    app: FastAPI, client: httpx.AsyncClient, db: Database
) -> None:
    """A budget is a token's, not its user's: a script that spent its token's minute leaves
    the user's other tokens (another integration's) their whole budget."""
    state = app.state.casefolio
    state.limiter = RateLimiter(state.settings.rate_limit_per_minute, clock=lambda: 1_000 * 60 + 30)
    first = await make_actor(db, rate_limit=2)
    async with db.write() as session:
        issued = await tokens.issue(
            session, who=None, user_id=first.user_id, name="second", rate_limit=2
        )
    second = Actor(first.user_id, first.email, issued.secret, issued.token.id)
    await switch_api(db, on=True)
    statuses = [
        (await client.get("/api/v1/roles", headers=first.headers)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    other = await client.get("/api/v1/roles", headers=second.headers)
    assert other.status_code == 200
    assert other.headers["RateLimit-Remaining"] == "1"


@pytest.mark.parametrize("token", [None, "guess"], ids=["no token", "not a token"])
async def test_callers_without_a_token_have_a_budget_per_address(
    app: FastAPI, token: str | None
) -> None:
    """Requests without a usable token are charged to their address: one address refused
    for guessing leaves another address's budget whole."""
    app.state.casefolio.limiter = RateLimiter(2, clock=lambda: 1_000 * 60 + 30)
    headers = {} if token is None else {"X-API-Token": token}

    def from_address(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40_000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async with from_address("192.0.2.1") as guesser, from_address("192.0.2.2") as bystander:
        guesses = [await guesser.get("/api/v1/roles", headers=headers) for _ in range(3)]
        other = await bystander.get("/api/v1/roles", headers=headers)
    assert [g.status_code for g in guesses] == [401, 401, 429]
    assert other.status_code == 401, other.text
    assert other.headers["RateLimit-Remaining"] == "1"


async def test_default_limit_is_fifty(client: httpx.AsyncClient, member: Actor) -> None:
    ok = await client.get("/api/v1/roles", headers=member.headers)
    assert ok.headers["RateLimit-Limit"] == "50"


@pytest.fixture
async def redis_apps(settings: Settings) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    first, second = create_app(shared), create_app(shared)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        await first.state.casefolio.limiter.reset()
        yield first, second


@pytest.mark.redis
async def test_two_app_instances_share_one_budget_through_redis(
    redis_apps: tuple[FastAPI, FastAPI],
) -> None:
    first, second = redis_apps
    db: Database = first.state.casefolio.db
    from tests.factories import switch_api

    await switch_api(db, on=True)
    actor = await make_actor(db, rate_limit=4)
    await anyio.sleep(wait_before_budget_sequence())
    statuses = []
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a") as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b") as b,
    ):
        for http in (a, b, a, b, a, b):
            statuses.append((await http.get("/api/v1/roles", headers=actor.headers)).status_code)
        last = await b.get("/api/v1/roles", headers=actor.headers)
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert last.headers["RateLimit-Remaining"] == "0"


@pytest.fixture
def other_installation(settings: Settings, tmp_path: Path) -> Settings:
    """Another installation's settings: a database of its own (freshly migrated), the same
    Redis as `settings` with REDIS_URL."""
    path = tmp_path / "other" / "casefolio.db"
    path.parent.mkdir()
    other = Settings(data_dir=path.parent, database_url=f"sqlite+aiosqlite:///{path}")
    migrate.upgrade(other)
    return other.model_copy(update={"redis_url": REDIS_URL})


@pytest.mark.redis
async def test_installations_sharing_redis_never_share_a_budget(
    settings: Settings, other_installation: Settings
) -> None:
    """Two installations with one Redis: their tokens' row ids coincide, their budgets do not."""
    one = create_app(settings.model_copy(update={"redis_url": REDIS_URL}))
    two = create_app(other_installation)
    async with one.router.lifespan_context(one), two.router.lifespan_context(two):
        actors = []
        for app in (one, two):
            await switch_api(app.state.casefolio.db, on=True)
            actors.append(await make_actor(app.state.casefolio.db, rate_limit=2))
        assert actors[0].token_id == actors[1].token_id
        await anyio.sleep(wait_before_budget_sequence())
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=one), base_url="http://a") as a,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=two), base_url="http://b") as b,
        ):
            spent = [(await a.get("/api/v1/roles", headers=actors[0].headers)) for _ in range(3)]
            other = await b.get("/api/v1/roles", headers=actors[1].headers)
    assert [r.status_code for r in spent] == [200, 200, 429]
    assert other.status_code == 200
    assert other.headers["RateLimit-Remaining"] == "1"


async def test_put_where_only_post_uploads_says_to_use_post(
    client: httpx.AsyncClient, member: Actor
) -> None:
    """`curl -T file URL` sends PUT; the raw upload is a POST, and the 405 says so."""
    raw = await client.put(
        "/api/v1/projects/1/documents?fileName=big.pdf",
        content=b"%PDF",
        headers={**member.headers, "Content-Type": "application/pdf"},
    )
    assert raw.status_code == 405
    assert raw.headers["allow"] == "GET, HEAD, POST"
    assert raw.json()["detail"] == (
        "PUT is not allowed on /api/v1/projects/1/documents. "
        "Use POST (with curl: -X POST -T file, or --data-binary @file)."
    )
    roles = await client.put("/api/v1/roles", headers=member.headers)
    assert "Use POST" not in roles.json()["detail"]
