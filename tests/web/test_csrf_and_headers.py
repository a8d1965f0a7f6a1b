"""Every state-changing request needs the session's CSRF token and this site's origin; every
page carries the security headers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from casefolio.db.engine import Database
from casefolio.db.models import Document, Project
from casefolio.web.deps import WebRoute
from tests.api.snapshots import snapshot
from tests.api.v1.conftest import make_matter
from tests.factories import Actor
from tests.web.conftest import PASSWORD, Browser, Person

MakePerson = Callable[[Actor], Awaitable[Person]]


async def _count(db: Database, model: type[Project] | type[Document]) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_form_posts_without_the_csrf_token_are_refused_and_change_nothing(
    db: Database, person: MakePerson, operator: Actor
) -> None:
    op = await person(operator)
    missing = await op.http.post("/projects", data={"name": "Forged"})
    wrong = await op.http.post("/projects", data={"name": "Forged", "csrf": "not-the-token"})
    foreign = await op.http.post(
        "/projects",
        data={"name": "Forged", "csrf": op.csrf},
        headers={"Origin": "https://evil.example"},
    )
    # Origins that are not URLs at all (an unclosed IPv6 bracket): refused, not a 500.
    not_urls = [
        await op.http.post(
            "/projects", data={"name": "Forged", "csrf": op.csrf}, headers={name: value}
        )
        for name in ("Origin", "Referer")
        for value in ("http://[", "http://[x]/")
    ]
    for refused in (missing, wrong, foreign, *not_urls):
        assert refused.status_code == 403
        assert "security token (CSRF)" in refused.text
    assert await _count(db, Project) == 0
    # The same post with the token (as a field, or as htmx's header) goes through.
    assert (await op.post("/projects", {"name": "Real"})).status_code == 303
    by_header = await op.http.post(
        "/projects", data={"name": "Also real"}, headers={"X-CSRF-Token": op.csrf}
    )
    assert by_header.status_code == 303
    assert await _count(db, Project) == 2


async def test_every_state_changing_page_refuses_a_post_without_its_csrf_token(
    app: FastAPI, db: Database, person: MakePerson, operator: Actor, member: Actor
) -> None:
    """Each page route that takes a POST checks the session's token before it acts (only
    sign-in and the set-password link, which no session sends, check the origin alone): a
    form without it, or with a wrong one in the field or htmx's header, changes nothing."""
    op = await person(operator)
    assert (await op.post("/projects", {"name": "Kept"})).status_code == 303
    assert (await op.post("/tokens", {"name": "kept"})).status_code == 303
    without_a_session = {"/signin", "/set-password/{secret}"}
    posts = [
        re.sub(r"{[^}]+}", lambda found: str(member.user_id) if "user" in found[0] else "1", r.path)
        for r in app.routes
        if isinstance(r, WebRoute)
        and "POST" in (r.methods or ())
        and r.path not in without_a_session
    ]
    assert len(posts) > 20 and "/account/password" in posts and "/tokens/1/revoke" in posts
    form = {"name": "Forged", "current": PASSWORD, "new": "forged password", "again": "x"}
    form |= {"active": "false", "operator": "true", "email": "forged@example.com"}
    stored = await snapshot(db)
    for path in posts:
        for sent in ({}, {"data": {"csrf": "not-the-token"}}, {"headers": {"X-CSRF-Token": "x"}}):
            data = {**form, **sent.get("data", {})}
            refused = await op.http.post(path, data=data, headers=sent.get("headers", {}))
            assert refused.status_code == 403, (path, sent, refused.status_code)
            assert "security token (CSRF)" in refused.text, path
    assert await snapshot(db) == stored
    assert (await op.http.get("/projects")).status_code == 200  # still signed in


async def test_a_set_password_link_posted_from_another_site_sets_nothing(
    db: Database, person: MakePerson, operator: Actor, member: Actor, browsers: Browser
) -> None:
    admin = await person(operator)
    reset = await admin.post(f"/admin/users/{member.user_id}/reset")
    found = re.search(r"/set-password/[A-Za-z0-9_-]+", reset.text)
    assert found is not None
    stored = await snapshot(db)
    form = {"password": "forged password", "again": "forged password"}
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}):
        refused = await (await browsers()).post(found[0], data=form, headers=headers)
        assert refused.status_code == 403 and "security token (CSRF)" in refused.text
    assert await snapshot(db) == stored


async def test_a_csrf_token_that_is_not_ascii_is_refused_not_answered_with_a_500(
    db: Database, person: MakePerson, operator: Actor
) -> None:
    """The token is compared in constant time, which Python does for ASCII text only: any
    other text sent as the token is a wrong token, refused as one."""
    op = await person(operator)
    stored = await snapshot(db)
    for wrong in ("é", op.csrf[:-1] + "é", "\u2603" * len(op.csrf)):
        sent = [
            await op.http.post("/projects", data={"name": "Forged", "csrf": wrong}),
            await op.http.post("/projects", data={"name": "Forged"}, params={"csrf": wrong}),
            await op.http.post(
                "/projects", data={"name": "Forged"}, headers={"X-CSRF-Token": wrong.encode()}
            ),
        ]
        for refused in sent:
            assert refused.status_code == 403, (wrong, refused.status_code)
            assert "security token (CSRF)" in refused.text
    assert await snapshot(db) == stored


async def test_an_origin_that_only_resembles_this_site_is_another_site(
    db: Database, person: MakePerson, operator: Actor
) -> None:
    """The site sent in Origin or Referer must be this host exactly, port included: a host
    that begins or ends like it is someone else's."""
    op = await person(operator)
    lookalikes = ["http://eviltestserver", "http://testserver.evil.example", "http://testserver:81"]
    for sent in lookalikes:
        for name in ("Origin", "Referer"):
            refused = await op.http.post(
                "/projects", data={"name": "Forged", "csrf": op.csrf}, headers={name: sent}
            )
            assert refused.status_code == 403, (name, sent)
    assert await _count(db, Project) == 0
    same = await op.http.post(
        "/projects",
        data={"name": "Real", "csrf": op.csrf},
        headers={"Origin": "http://testserver", "Referer": "http://testserver/projects"},
    )
    assert same.status_code == 303
    assert await _count(db, Project) == 1


async def test_an_upload_without_the_csrf_token_is_refused_before_anything_is_stored(
    db: Database, person: MakePerson, operator: Actor
) -> None:
    op = await person(operator)
    made = await op.post("/projects", {"name": "Uploads"})
    project = made.headers["location"]
    refused = await op.http.post(f"{project}/upload", files={"file": ("a.txt", b"forged")})
    assert refused.status_code == 403
    assert await _count(db, Document) == 0
    sent = await op.http.post(f"{project}/upload?csrf={op.csrf}", files={"file": ("a.txt", b"ok")})
    assert sent.status_code == 303
    assert await _count(db, Document) == 1


async def test_sign_out_needs_the_token_too(person: MakePerson, member: Actor) -> None:
    someone = await person(member)
    assert (await someone.http.post("/signout")).status_code == 403
    assert (await someone.http.get("/projects")).status_code == 200


async def test_every_page_carries_the_security_headers(
    person: MakePerson, operator: Actor, client: httpx.AsyncClient
) -> None:
    op = await person(operator)
    pages = ["/projects", "/tokens", "/account", "/admin/users", "/admin/teams", "/admin/settings"]
    pages += ["/admin/webhooks", "/admin/audit"]
    responses = [await op.http.get(p) for p in pages]
    responses += [await client.get(p) for p in ("/", "/signin", "/static/app.css")]
    responses.append(await op.http.get("/projects/999"))  # a refusal is a page too
    for response in responses:
        policy = response.headers["content-security-policy"]
        script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
        assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    assert "content-security-policy" not in (await client.get("/api/v1/users")).headers
    for page in responses[: len(pages)]:
        assert page.status_code == 200
        assert "<script>" not in page.text and "style=" not in page.text


async def test_the_api_docs_may_not_be_framed_nor_sniffed(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    script = re.search(r'src="(/docs/assets/[^"]+\.js)"', docs.text)
    assert script is not None
    asset = await client.get(script.group(1))
    assert asset.status_code == 200
    for response in (docs, asset, await client.get("/docs/oauth2-redirect")):
        # Only frame-ancestors: Swagger UI runs inline scripts of its own.
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_assets_are_served_from_the_package_with_htmx_licence(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/signin")
    scripts = [s.split('"')[0] for s in page.text.split('<script src="')[1:]]
    assert scripts == ["/static/vendor/htmx-2.0.11.min.js", "/static/app.js"]
    for script in scripts:
        assert (await client.get(script)).status_code == 200
    licence = await client.get("/static/vendor/htmx-LICENSE.txt")
    assert licence.status_code == 200 and "Zero-Clause BSD" in licence.text


async def test_a_downloaded_html_file_carries_its_own_sandbox_once(
    client: httpx.AsyncClient, db: Database, person: MakePerson, operator: Actor
) -> None:
    matter = await make_matter(client, db, operator)
    filed = await client.post(
        matter.url("/documents"),
        content=b"<script>alert(1)</script>",
        params={"fileName": "page.html"},
        headers={**operator.headers, "Content-Type": "text/html"},
    )
    doc = filed.json()
    op = await person(operator)
    got = await op.http.get(
        f"/projects/{matter.id}/documents/{doc['id']}/versions/{doc['currentVersion']['id']}"
        "/download"
    )
    assert got.status_code == 200
    assert got.headers.get_list("content-security-policy") == ["default-src 'none'; sandbox"]
    assert got.headers.get_list("x-content-type-options") == ["nosniff"]
    assert got.headers["x-frame-options"] == "DENY"  # what the download did not set is added
    assert got.headers["cache-control"] == "no-store"  # no copy left after signing out
