"""Every page route, signed in as an operator, given hostile ids in its path and query, and
every form given hostile values: a clear refusal (400/404/422) or a page, never a 500
(PostgreSQL refuses ids past BIGINT), and a refused form stores nothing."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from itertools import product

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from casefolio.db.engine import Database
from casefolio.db.models import Project
from casefolio.domain import text
from casefolio.web.deps import WebRoute
from tests.api.snapshots import snapshot
from tests.api.v1.conftest import make_matter, upload
from tests.factories import Actor, make_actor
from tests.hostile import CURSOR_VALUES
from tests.web.conftest import Person

MakePerson = Callable[[Actor], Awaitable[Person]]
HOSTILE = ("0", "-1", "abc", "99999999999999999999", "1e3", "%00")
QUERIES = (
    "folder",
    "cursor",
    "project",
    "projectId",
    "q",
    "user",
    "targetId",
    "limit",
    "after",
    "sort",
)


def _fill(path: str, name: str, value: str) -> str:
    def one(found: re.Match[str]) -> str:
        return value if found.group(1) == name else "1"

    return re.sub(r"{([^}]+)}", one, path)


async def test_every_page_route_refuses_hostile_ids_without_a_500(
    app: FastAPI, person: MakePerson, operator: Actor
) -> None:
    op = await person(operator)
    routes = [
        r
        for r in app.routes
        if isinstance(r, WebRoute) and r.path not in ("/signout", "/account/password")
    ]
    assert len(routes) > 30
    sent = 0
    for route in routes:
        for method in sorted(route.methods or ()):
            names = list(route.param_convertors) or [""]
            for name in names:
                for value in HOSTILE:
                    url = _fill(route.path, name, value)
                    query = "&".join(f"{q}={value}" for q in QUERIES)
                    if method == "GET":
                        answer = await op.http.get(f"{url}?{query}")
                    else:
                        answer = await op.http.post(
                            f"{url}?{query}&csrf={op.csrf}",
                            data={
                                "csrf": op.csrf,
                                "team": value,
                                "parent": value,
                                "folder": value,
                                "template": value,
                                "name": "x",
                            },
                        )
                    sent += 1
                    assert answer.status_code < 500, (method, url, query, answer.text[:300])
                    location = answer.headers.get("location", "")
                    assert not location.startswith("/signin"), (method, url)
    assert sent > 200


async def test_every_page_route_refuses_a_forged_cursor_without_a_500(
    app: FastAPI, person: MakePerson, operator: Actor
) -> None:
    """Cursors are opaque but readable: one forged with a key no column holds (an integer
    past 64 bits, a time without a zone) is refused like any other invalid cursor."""
    op = await person(operator)
    # Project 1, which the paths below name: its page reads a cursor of its own order.
    assert (await op.post("/projects", {"name": "Cursors"})).headers["location"] == "/projects/1"
    pages = [
        r.path
        for r in app.routes
        if isinstance(r, WebRoute) and "GET" in (r.methods or ()) and r.path != "/signout"
    ]
    refused = 0
    for path in pages:
        for cursor in CURSOR_VALUES:
            for sort in ("", "&sort=title"):  # the project page's title order: a text key
                answer = await op.http.get(f"{_fill(path, '', '1')}?cursor={cursor}{sort}")
                assert answer.status_code < 500, (path, cursor, sort, answer.text[:300])
                refused += answer.status_code == 400
    assert refused >= len(CURSOR_VALUES)  # the project page reads its cursor


# Every name a page's form sends (web/*.py reads them with form.get), each given the same
# hostile value at once: the first check each handler makes refuses it, or it is stored.
FORM_FIELDS = [
    "name",
    "email",
    "description",
    "role",
    "password",
    "operator",
    "new",
    "again",
    "active",
    "value",
    "url",
    "title",
    "template",
    "team",
    "parent",
    "next",
    "folder",
    "expires",
    "current",
    "events",
    "projects",
    "type",
    "choices",
    "required",
    "reason",
    "scope",
    "targetId",
    "rateLimit",
    "q",
    "user",
]
FORM_VALUES = (
    "\x00",  # PostgreSQL cannot store it
    "nan",
    "-inf",
    "1e400",
    "9" * 30,
    "-1",
    "10000-01-01",
    "0000-00-00",
    "x" * 7000,  # longer than every name column; the whole form stays under its limit
    " ",
    "\u202e<script>",
)


# A form each handler would accept, so that one hostile field is what it meets.
PLAUSIBLE = {
    "name": "Walked",
    "email": "walked@example.com",
    "title": "Walked",
    "url": "http://127.0.0.1:9/hook",
    "role": "Read Only",
    "type": "text",
}
#: Sent one field at a time: past every name column and every text's limit, and a number past
#: every id column.
ONE_FIELD_VALUES = ("x" * (text.MAX_DESCRIPTION + 1), "9" * 25, "\x00")


async def test_every_form_refuses_hostile_values_without_a_500(
    app: FastAPI, person: MakePerson, operator: Actor, db: Database
) -> None:
    op = await person(operator)
    assert (await op.post("/projects", {"name": "Walked"})).status_code == 303
    assert (await op.post("/admin/teams", {"name": "Walked"})).status_code == 303
    # Document 1 in project 1, for the document forms (a deletion is sent last).
    filed = await op.http.post(
        f"/projects/1/upload?csrf={op.csrf}", files={"file": ("walked.pdf", b"%PDF walked")}
    )
    assert filed.headers["location"] == "/projects/1/documents/1"
    # The forms about a user act on another one: resetting or deactivating the walker would
    # sign it out.
    other = await make_actor(db, email="walked-over@example.com")
    forms = [
        _fill(r.path, "user_id", str(other.user_id))
        for r in app.routes
        if isinstance(r, WebRoute)
        and "POST" in (r.methods or ())
        and r.path not in ("/signout", "/signin", "/account/password")
    ]
    assert len(forms) > 20
    sent = [
        *((path, dict.fromkeys(FORM_FIELDS, value)) for path in forms for value in FORM_VALUES),
        *(
            # Names and titles new each time, so that a refusal which kept them would show.
            (path, {**PLAUSIBLE, "name": f"Walked {n}", "title": f"Walked {n}", field: value})
            for n, (path, field, value) in enumerate(product(forms, FORM_FIELDS, ONE_FIELD_VALUES))
        ),
    ]
    sent.sort(key=lambda sending: sending[0].endswith("/delete"))
    statuses: dict[int, int] = {}
    stored = await snapshot(db)
    for path, form in sent:
        answer = await op.post(path, form)
        shown = (path, {k: v[:20] for k, v in form.items()})
        assert answer.status_code < 500, shown
        # Still signed in: a walk signed out would meet nothing but redirects.
        assert not answer.headers.get("location", "").startswith("/signin"), shown
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        now = await snapshot(db)
        if answer.status_code >= 400:
            assert now == stored, shown  # a refusal stores nothing
        stored = now
    assert statuses.get(400, 0) > len(forms), statuses  # the handlers' own checks ran


async def test_descriptions_past_the_apis_limits_are_refused_from_forms_and_nothing_changes(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    """The APIs' models bound descriptions; the forms reach the domain without them, which
    bounds them too (a form may carry 256 KiB)."""
    op = await person(operator)
    too_long = "x" * (text.MAX_DESCRIPTION + 1)
    made = await op.post("/projects", {"name": "Long-winded", "description": too_long})
    assert made.status_code == 400 and "at most 100,000 characters" in made.text
    listed = await client.get("/api/v1/projects", headers=operator.headers)
    assert "Long-winded" not in [p["name"] for p in listed.json()]

    matter = await make_matter(client, db, operator)
    doc = (await upload(client, matter)).json()
    doc_url = f"/projects/{matter.id}/documents/{doc['id']}"
    refused = await op.post(f"{doc_url}/details", {"title": "Renamed", "description": too_long})
    assert refused.status_code == 400 and "at most 100,000 characters" in refused.text
    read = await client.get(matter.url(f"/documents/{doc['id']}"), headers=operator.headers)
    assert (read.json()["title"], read.json()["description"]) == (doc["title"], "")
    fits = "y" * text.MAX_DESCRIPTION
    assert (await op.post(f"{doc_url}/details", {"description": fits})).status_code == 303
    read = await client.get(matter.url(f"/documents/{doc['id']}"), headers=operator.headers)
    assert read.json()["description"] == fits

    hook = await op.post(
        "/admin/webhooks",
        {
            "url": "http://127.0.0.1:9/hook",
            "event:document.created": "on",
            "description": "z" * (text.MAX_WEBHOOK_DESCRIPTION + 1),
        },
    )
    assert hook.status_code == 400 and "at most 2,000 characters" in hook.text
    hooks = await client.get("/api/v1/webhooks", headers=operator.headers)
    assert hooks.json() == []


async def test_escapes_of_bytes_that_are_not_utf_8_are_refused_not_stored_as_u_fffd(
    person: MakePerson, operator: Actor, db: Database
) -> None:
    op = await person(operator)
    for escaped in ("caf%FF", "caf%ED%A0%80", "%C3"):
        body = f"csrf={op.csrf}&name={escaped}".encode()
        refused = await op.http.post(
            "/projects",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert refused.status_code == 400, refused.text[:300]
        assert "not sent as UTF-8" in refused.text
    async with db.read() as session:
        assert list(await session.scalars(select(Project.name))) == []
    made = await op.http.post(
        "/projects",
        content=f"csrf={op.csrf}&name=caf%C3%A9".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert made.status_code == 303
    async with db.read() as session:
        assert list(await session.scalars(select(Project.name))) == ["café"]
