"""Who sees what through the pages, at the edges the other page tests leave: a project page
another person opened first, the webhook form's project choices, an operator's own tokens
page, and where sign-in and forms come from (another site, a `null` origin, a `next` that
leaves the site)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import func, select, update

from casefolio.db.engine import Database
from casefolio.db.models import Project, User, WebSession
from tests.api.v1.conftest import make_matter, upload
from tests.factories import Actor
from tests.web.conftest import PASSWORD, Browser, Person, give_password

MakePerson = Callable[[Actor], Awaitable[Person]]


async def _count(db: Database, model: type[Project] | type[WebSession]) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_project_page_a_member_opened_is_still_not_found_for_an_outsider(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)
    title = (await upload(client, matter, name="privileged-memo.pdf")).json()["title"]
    reader = await person(matter.reader)
    outsider = await person(matter.outsider)
    for headers in ({}, {"HX-Request": "true", "HX-Target": "documents"}):
        # The reader's page (and its list alone, as htmx asks for it) is read and kept...
        seen = await reader.http.get(f"/projects/{matter.id}", headers=headers)
        assert seen.status_code == 200 and title in seen.text
        # ...and never handed to someone who may not read the project.
        refused = await outsider.http.get(f"/projects/{matter.id}", headers=headers)
        assert refused.status_code == 404
        assert title not in refused.text and "Smith v Jones" not in refused.text


async def test_the_webhook_form_offers_only_projects_one_administers(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)
    choice = f'name="project:{matter.id}"'
    admin_page = await (await person(matter.admin)).http.get("/admin/webhooks")
    assert admin_page.status_code == 200 and choice in admin_page.text
    for actor in (matter.writer, matter.reader, matter.outsider):
        page = await (await person(actor)).http.get("/admin/webhooks")
        assert page.status_code == 200
        assert choice not in page.text and "Smith v Jones" not in page.text
        assert "You administer no project" in page.text


async def test_an_operators_tokens_page_lists_only_their_own_tokens(
    person: MakePerson, operator: Actor, member: Actor
) -> None:
    someone = await person(member)
    assert (await someone.post("/tokens", {"name": "members-scanner"})).status_code == 303
    assert "members-scanner" in (await someone.http.get("/tokens")).text
    op = await person(operator)
    mine = await op.post("/tokens", {"name": "operators-own"})
    assert mine.status_code == 303
    listed = await op.http.get("/tokens")
    assert listed.status_code == 200 and "operators-own" in listed.text
    assert "members-scanner" not in listed.text


async def test_a_form_post_from_a_null_origin_is_refused_and_changes_nothing(
    db: Database, person: MakePerson, operator: Actor
) -> None:
    # A sandboxed frame or a file: page says `Origin: null`: not this site, token or not.
    op = await person(operator)
    for name in ("Origin", "Referer"):
        refused = await op.http.post(
            "/projects", data={"name": "Forged", "csrf": op.csrf}, headers={name: "null"}
        )
        assert refused.status_code == 403 and "security token (CSRF)" in refused.text
    assert await _count(db, Project) == 0


async def test_a_sign_in_posted_from_another_site_is_refused_and_opens_no_session(
    db: Database, browsers: Browser, member: Actor
) -> None:
    await give_password(db, member.email)
    http = await browsers()
    form = {"email": member.email, "password": PASSWORD}
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}):
        refused = await http.post("/signin", data=form, headers=headers)
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert await _count(db, WebSession) == 0
    assert (await http.get("/projects")).status_code == 303


async def test_sign_in_never_sends_the_browser_to_another_site(
    db: Database, browsers: Browser, member: Actor
) -> None:
    await give_password(db, member.email)
    for target in ("//evil.example/x", "/\\evil.example/x", "https://evil.example/x"):
        http = await browsers()
        page = await http.get("/signin", params={"next": target})
        assert page.status_code == 200 and "evil.example" not in page.text
        signed_in = await http.post(
            "/signin", data={"email": member.email, "password": PASSWORD, "next": target}
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/projects"


async def test_a_session_whose_user_is_inactive_opens_no_page(
    db: Database, person: MakePerson, member: Actor
) -> None:
    """Deactivation ends the user's sessions (test_sign_in.py); a session row that outlived
    it all the same (written back by a restore, say) still opens nothing."""
    someone = await person(member)
    assert (await someone.http.get("/projects")).status_code == 200
    async with db.write() as session:
        await session.execute(update(User).where(User.id == member.user_id).values(active=False))
    assert await _count(db, WebSession) == 1
    page = await someone.http.get("/projects")
    assert page.status_code == 303 and page.headers["location"].startswith("/signin")
