"""The pages apply the API's rules: invisible is not found, forbidden names the missing
capability, and a refusal changes nothing."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Folder, WebSession
from casefolio.domain import access, browse, shown_once
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.web.account import TOKEN_SHOWN
from casefolio.web.deps import SESSION_COOKIE
from tests.api.v1.conftest import Matter, make_matter, upload
from tests.factories import Actor
from tests.races import second_after_first
from tests.web.conftest import Person

MakePerson = Callable[[Actor], Awaitable[Person]]


async def _documents(client: httpx.AsyncClient, matter: Matter) -> list[dict[str, object]]:
    listed = await client.get(matter.url("/documents"), headers=matter.admin.headers)
    assert listed.status_code == 200
    return list(listed.json())


async def test_an_outsider_gets_not_found_for_a_project_and_its_documents(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)
    doc = (await upload(client, matter)).json()["id"]
    outsider = await person(matter.outsider)
    listed = await outsider.http.get("/projects")
    assert "Smith v Jones" not in listed.text
    for path in (f"/projects/{matter.id}", f"/projects/{matter.id}/documents/{doc}"):
        page = await outsider.http.get(path)
        assert page.status_code == 404, path
        assert "Smith v Jones" not in page.text


async def test_a_reader_sees_no_upload_control_and_is_refused_when_posting_anyway(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)
    reader = await person(matter.reader)
    page = await reader.http.get(f"/projects/{matter.id}")
    assert page.status_code == 200 and "Read Only" in page.text
    assert 'type="file"' not in page.text and "New folder" not in page.text
    refused = await reader.http.post(
        f"/projects/{matter.id}/upload?csrf={reader.csrf}",
        files={"file": ("sneaky.pdf", b"%PDF sneaky")},
    )
    assert refused.status_code == 403
    assert "does not include documents.write" in refused.text
    folder = await reader.post(f"/projects/{matter.id}/folders", {"name": "Sneaky"})
    assert folder.status_code == 403 and "folders.write" in folder.text
    assert await _documents(client, matter) == []
    folders = await client.get(matter.url("/folders"), headers=matter.admin.headers)
    assert folders.json() == []


async def _matter_with_number_field(
    client: httpx.AsyncClient, db: Database, operator: Actor, name: str
) -> tuple[Matter, str]:
    """A new project with one number field named `name`; the project and the field's id."""
    matter = await make_matter(client, db, operator)
    made = await client.post(
        matter.url("/fields"), json={"name": name, "type": "number"}, headers=matter.admin.headers
    )
    assert made.status_code == 201, made.text
    return matter, str(made.json()["id"])


async def test_a_writer_files_edits_and_moves_but_cannot_delete(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter, field = await _matter_with_number_field(client, db, operator, "Pages")
    writer = await person(matter.writer)
    folder = await writer.post(f"/projects/{matter.id}/folders", {"name": "Pleadings"})
    assert folder.status_code == 303
    folder_id = int(folder.headers["location"].rsplit("=", 1)[1])
    renamed = await writer.post(
        f"/projects/{matter.id}/folders/{folder_id}/rename", {"name": "Court filings"}
    )
    assert renamed.status_code == 303
    sent = await writer.http.post(
        f"/projects/{matter.id}/upload?csrf={writer.csrf}&folder={folder_id}",
        files={"file": ("claim.pdf", b"%PDF claim")},
    )
    assert sent.status_code == 303
    doc_url = sent.headers["location"]
    doc_id = int(doc_url.rsplit("/", 1)[1])
    # What the API refuses too: float() alone would take other scripts' digits and "1_000".
    for not_json in ("many", "\u0661\u0662", "1_000", "\uff15", "nan", "+3", ".5"):
        bad = await writer.post(f"{doc_url}/fields/{field}", {"value": not_json})
        assert bad.status_code == 400 and "needs a number" in bad.text, not_json
    good = await writer.post(f"{doc_url}/fields/{field}", {"value": "12"})
    assert good.status_code == 303
    moved = await writer.post(f"{doc_url}/move", {"folder": ""})
    assert moved.status_code == 303
    version = await writer.http.post(
        f"{doc_url}/versions?csrf={writer.csrf}", files={"file": ("claim-v2.pdf", b"%PDF v2")}
    )
    assert version.status_code == 303
    page = await writer.http.get(doc_url)
    assert "claim-v2.pdf" in page.text and "claim.pdf" in page.text
    refused = await writer.post(f"{doc_url}/delete")
    assert refused.status_code == 403 and "documents.delete" in refused.text
    read = await client.get(matter.url(f"/documents/{doc_id}"), headers=matter.admin.headers)
    body = read.json()
    assert body["folderId"] is None
    assert body["currentVersion"]["fileName"] == "claim-v2.pdf"
    assert [(f["name"], f["value"]) for f in body["fields"]] == [("Pages", 12)]
    tree = await client.get(matter.url("/folders"), headers=matter.admin.headers)
    assert [f["name"] for f in tree.json()] == ["Court filings"]


@pytest.mark.parametrize("typed", ["1e20", "-2.5E300", "1e0"])
async def test_a_number_with_an_exponent_is_stored_as_the_api_stores_its_json(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson, typed: str
) -> None:
    """JSON reads a number with an exponent as a float (the API stores 1e20); the page, which
    reads what is typed as JSON does, stores the same, not an integer past 2**53 it refuses."""
    matter, field = await _matter_with_number_field(client, db, operator, "Amount")
    doc = (await upload(client, matter)).json()["id"]
    through_api = await client.put(
        matter.url(f"/documents/{doc}/fields/{field}"),
        content=f'{{"value": {typed}}}',
        headers={**matter.admin.headers, "Content-Type": "application/json"},
    )
    assert through_api.status_code == 200, through_api.text
    expected = through_api.json()["fields"]
    await client.put(
        matter.url(f"/documents/{doc}/fields/{field}"),
        json={"value": None},
        headers=matter.admin.headers,
    )
    writer = await person(matter.writer)
    sent = await writer.post(
        f"/projects/{matter.id}/documents/{doc}/fields/{field}", {"value": typed}
    )
    assert sent.status_code == 303, sent.text
    read = await client.get(matter.url(f"/documents/{doc}"), headers=matter.admin.headers)
    assert read.json()["fields"] == expected
    # Past the floats, as past 2**53, the field's rule refuses it (int() of so many digits
    # would raise).
    huge = await writer.post(
        f"/projects/{matter.id}/documents/{doc}/fields/{field}", {"value": "9" * 5000}
    )
    assert huge.status_code == 400, huge.text


async def test_a_yes_no_field_takes_only_the_two_answers_its_control_sends(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    """The page's control sends `true` or `false`; anything else (`on`, `yes`, `True`, a
    form without the value) was stored as false, answered as done."""
    matter = await make_matter(client, db, operator)
    made = await client.post(
        matter.url("/fields"),
        json={"name": "Privileged", "type": "boolean"},
        headers=matter.admin.headers,
    )
    field = made.json()["id"]
    doc = (await upload(client, matter)).json()["id"]
    writer = await person(matter.writer)
    url = f"/projects/{matter.id}/documents/{doc}/fields/{field}"
    assert (await writer.post(url, {"value": "true"})).status_code == 303
    for odd in ({"value": "on"}, {"value": "yes"}, {"value": "True"}, {"value": ""}, {}):
        refused = await writer.post(url, odd)
        assert refused.status_code == 400, (odd, refused.text)
        assert "Yes or No" in refused.text, odd
    read = await client.get(matter.url(f"/documents/{doc}"), headers=matter.admin.headers)
    assert [(f["name"], f["value"]) for f in read.json()["fields"]] == [("Privileged", True)]
    assert (await writer.post(url, {"value": "false"})).status_code == 303
    read = await client.get(matter.url(f"/documents/{doc}"), headers=matter.admin.headers)
    assert [(f["name"], f["value"]) for f in read.json()["fields"]] == [("Privileged", False)]


EXHIBIT = b"%PDF exhibit bytes"


async def _readers_download(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> tuple[Matter, Person, str]:
    """A matter with one exhibit, its reader signed in, and the exhibit's page download."""
    matter = await make_matter(client, db, operator)
    doc = (await upload(client, matter, EXHIBIT)).json()
    version = doc["currentVersion"]["id"]
    reader = await person(matter.reader)
    return (
        matter,
        reader,
        f"/projects/{matter.id}/documents/{doc['id']}/versions/{version}/download",
    )


async def test_downloads_follow_the_project_setting(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter, reader, url = await _readers_download(client, db, operator, person)
    got = await reader.http.get(url)
    assert got.status_code == 200 and got.content == EXHIBIT
    off = await client.patch(
        matter.url(), json={"settings": {"downloadViaApi": False}}, headers=operator.headers
    )
    assert off.status_code == 200
    refused = await reader.http.get(url)
    assert refused.status_code == 403 and "downloadViaApi" in refused.text


async def test_a_download_range_past_the_end_is_answered_as_a_page(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    _, reader, url = await _readers_download(client, db, operator, person)
    refused = await reader.http.get(url, headers={"Range": "bytes=500-"})
    assert refused.status_code == 416
    assert refused.headers["content-type"].startswith("text/html")
    assert refused.headers["content-range"] == f"bytes */{len(EXHIBIT)}"
    assert f"lies outside the {len(EXHIBIT)} bytes" in refused.text
    partial = await reader.http.get(url, headers={"Range": "bytes=0-3"})
    assert partial.status_code == 206 and partial.content == b"%PDF"


async def test_only_operators_reach_the_administration_pages(
    person: MakePerson, member: Actor, db: Database
) -> None:
    someone = await person(member)
    for path, action in [
        ("/admin/users", "administer users"),
        ("/admin/teams", "administer teams"),
        ("/admin/settings", "change system settings"),
    ]:
        page = await someone.http.get(path)
        assert page.status_code == 403 and f"Only an operator can {action}" in page.text
    invite = await someone.post("/admin/users", {"email": "x@example.com", "name": "X"})
    assert invite.status_code == 403
    made = await someone.post("/projects", {"name": "Mine"})
    assert made.status_code == 403 and "Only an operator can create projects" in made.text


async def test_operator_administers_teams_access_and_the_api_switch(
    client: httpx.AsyncClient, person: MakePerson, operator: Actor, member: Actor
) -> None:
    op = await person(operator)
    assert (await op.post("/admin/teams", {"name": "Litigation"})).status_code == 303
    teams = (await client.get("/api/v1/teams", headers=operator.headers)).json()
    team = teams[0]["id"]
    assert (
        await op.post(f"/admin/teams/{team}/members", {"email": member.email})
    ).status_code == 303
    project = (await op.post("/projects", {"name": "Acme"})).headers["location"]
    granted = await op.post(f"{project}/access/teams", {"team": str(team), "role": "Read Only"})
    assert granted.status_code == 303
    pid = project.rsplit("/", 1)[1]
    members = await client.get(f"/api/v1/projects/{pid}/users", headers=operator.headers)
    roles = {m["email"]: m["role"] for m in members.json()}
    assert roles[member.email] == "Read Only"
    settings_on = await op.post(f"{project}/settings", {"downloadViaApi": "on"})
    assert settings_on.status_code == 303
    read = await client.get(f"/api/v1/projects/{pid}", headers=operator.headers)
    assert read.json()["settings"]["downloadViaApi"] is True
    switched = await op.post("/admin/settings", {})
    assert switched.status_code == 303
    assert (await client.get("/api/v1/projects", headers=member.headers)).status_code == 403
    assert (await op.http.get("/projects")).status_code == 200  # the pages keep working


async def test_a_head_request_does_not_use_up_the_token_shown_once(
    person: MakePerson, member: Actor
) -> None:
    someone = await person(member)
    assert (await someone.post("/tokens", {"name": "prefetched"})).status_code == 303
    for _ in range(2):
        head = await someone.http.head("/tokens")
        assert head.status_code == 200 and head.content == b""
    shown = await someone.http.get("/tokens")
    assert 'id="secret" type="text" readonly value="cf_' in shown.text
    assert 'id="secret"' not in (await someone.http.get("/tokens")).text


async def test_of_two_reads_of_the_tokens_page_at_once_only_one_shows_the_secret(
    db: Database, person: MakePerson, member: Actor, is_postgres: bool
) -> None:
    """Two tabs, or a prefetch and the page, read what waits at once: both find it, and the
    one whose clearing comes second (it waited for the first's row lock) shows nothing."""
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: the second read finds it cleared")
    someone = await person(member)
    assert (await someone.post("/tokens", {"name": "raced"})).status_code == 303
    taken: list[dict[str, str] | None] = []

    async def first(session: AsyncSession) -> None:
        taken.append(
            await shown_once.take(
                session, cookie_secret=someone.http.cookies[SESSION_COOKIE], kind=TOKEN_SHOWN
            )
        )

    second = await second_after_first(db, first, lambda: someone.http.get("/tokens"))
    assert taken[0] is not None and taken[0]["secret"].startswith("cf_")
    assert second.status_code == 200 and taken[0]["secret"] not in second.text
    assert 'id="secret"' not in second.text


async def test_token_created_on_the_page_works_once_shown_and_can_be_revoked(
    client: httpx.AsyncClient, db: Database, person: MakePerson, member: Actor
) -> None:
    someone = await person(member)
    posted = await someone.post("/tokens", {"name": "scanner", "expires": "2999-01-01"})
    # POST-redirect-GET: the secret waits server-side, never in the address.
    assert posted.status_code == 303 and posted.headers["location"] == "/tokens"
    made = await someone.http.get("/tokens")
    secret = made.text.split('id="secret" type="text" readonly value="', 1)[1].split('"', 1)[0]
    assert secret.startswith("cf_") and f"X-API-Token: {secret}" in made.text
    async with db.read() as session:
        kept = await session.scalars(select(WebSession.shown_once))
        assert all(k is None or secret not in k for k in kept)  # sealed, and already taken
    reloaded = await someone.http.get("/tokens")  # a reload: no new token, no secret
    assert secret not in reloaded.text and reloaded.text.count("<td>scanner</td>") == 1
    assert (
        await client.get("/api/v1/projects", headers={"X-API-Token": secret})
    ).status_code == 200
    listed = await someone.http.get("/tokens")
    assert secret not in listed.text and secret[:10] in listed.text and "2999-01-01" in listed.text
    tokens = (await client.get("/api/v1/tokens", headers={"X-API-Token": secret})).json()
    mine = next(t for t in tokens if t["name"] == "scanner")
    assert (await someone.post(f"/tokens/{mine['id']}/revoke")).status_code == 303
    assert (
        await client.get("/api/v1/projects", headers={"X-API-Token": secret})
    ).status_code == 401


async def test_document_list_pages_sorts_and_filters_by_title(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)
    for name in ("b-reply.pdf", "a-claim.pdf", "c-claim-annex.pdf"):
        assert (await upload(client, matter, name.encode(), name)).status_code == 201
    who = Principal(matter.reader.user_id, matter.reader.email, "Reader", False)
    titles: list[str] = []
    cursor = None
    async with db.read() as session:
        scope = await access.scope(session, who, matter.id, Capability.DOCUMENTS_READ)
        while True:
            listing = browse.Listing(sort="title", cursor=cursor, limit=2)
            page = await browse.documents_page(session, scope=scope, listing=listing)
            titles += [d.title for d in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        newest = await browse.documents_page(session, scope=scope, listing=browse.Listing(limit=1))
        claims = await browse.documents_page(
            session, scope=scope, listing=browse.Listing(title_contains="CLAIM")
        )
    assert titles == ["a-claim.pdf", "b-reply.pdf", "c-claim-annex.pdf"]
    assert [d.title for d in newest.items] == ["c-claim-annex.pdf"]
    assert sorted(d.title for d in claims.items) == ["a-claim.pdf", "c-claim-annex.pdf"]
    reader = await person(matter.reader)
    partial = await reader.http.get(
        f"/projects/{matter.id}?sort=title&q=annex",
        headers={"HX-Request": "true", "HX-Target": "documents"},
    )
    assert partial.status_code == 200 and "<html" not in partial.text
    assert "c-claim-annex.pdf" in partial.text and "b-reply.pdf" not in partial.text


async def test_a_malformed_address_gets_a_page_saying_what_is_wrong(
    person: MakePerson, operator: Actor
) -> None:
    op = await person(operator)
    for path, words in [
        ("/projects/not-a-number", "project_id"),
        ("/projects/1?sort=size", "sort"),
    ]:
        page = await op.http.get(path)
        assert page.status_code == 400, path
        assert page.headers["content-type"].startswith("text/html")
        assert "This address is not valid" in page.text and words in page.text


async def test_a_held_document_is_refused_on_the_page_and_a_trashed_one_vanishes(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)
    held = (await upload(client, matter, b"%PDF held", "held-exhibit.pdf")).json()["id"]
    free = (await upload(client, matter, b"%PDF free", "free-exhibit.pdf")).json()["id"]
    placed = await client.post(
        matter.url("/holds"),
        json={"name": "Smith litigation", "reason": "r", "scope": "document", "targetId": held},
        headers=matter.admin.headers,
    )
    assert placed.status_code == 201
    admin = await person(matter.admin)
    refused = await admin.post(f"/projects/{matter.id}/documents/{held}/delete")
    assert refused.status_code == 409 and "Smith litigation" in refused.text
    # Audited as through the API: the refused transaction rolled back, the refusal is kept.
    async with db.read() as session:
        refusal = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "hold.refused"))
        ).one()
    assert refusal.details["holds"] == [int(placed.json()["id"])]
    assert (refusal.actor_kind, refusal.actor_user_id) == ("web", matter.admin.user_id)
    deleted = await admin.post(f"/projects/{matter.id}/documents/{free}/delete")
    assert deleted.status_code == 303
    page = await admin.http.get(f"/projects/{matter.id}")
    assert "held-exhibit.pdf" in page.text and "free-exhibit.pdf" not in page.text
    gone = await admin.http.get(f"/projects/{matter.id}/documents/{free}")
    assert gone.status_code == 404
    assert [d["id"] for d in await _documents(client, matter)] == [held]


async def test_only_operators_and_the_creator_switch_downloads_in_the_pages(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)
    admin = await person(matter.admin)
    page = await admin.http.get(f"/projects/{matter.id}/access")
    assert page.status_code == 200
    assert 'name="downloadViaApi"' not in page.text
    assert "creator can change this" in page.text
    forged = await admin.post(f"/projects/{matter.id}/settings", {})  # unchecked: "off"
    assert forged.status_code == 403 and "Only an operator or the creator" in forged.text
    project = await client.get(matter.url(), headers=operator.headers)
    assert project.json()["settings"]["downloadViaApi"] is True

    op = await person(operator)
    assert 'name="downloadViaApi"' in (await op.http.get(f"/projects/{matter.id}/access")).text
    assert (await op.post(f"/projects/{matter.id}/settings", {})).status_code == 303
    project = await client.get(matter.url(), headers=operator.headers)
    assert project.json()["settings"]["downloadViaApi"] is False


async def test_folders_nested_deeper_than_python_recurses_still_show(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)
    doc = (await upload(client, matter, b"%PDF deep")).json()
    # 990 levels, and a page shows 1,000 folders at most (each level one request through the
    # API or a page; made here in one go).
    async with db.write() as session:
        parent: int | None = None
        for level in range(990):
            folder = Folder(
                project_id=matter.id, parent_id=parent, parent_key=parent or 0, name=f"L{level}"
            )
            session.add(folder)
            await session.flush()
            parent = folder.id
        session.add(Folder(project_id=matter.id, parent_id=None, parent_key=0, name="A first"))
    op = await person(operator)
    page = await op.http.get(f"/projects/{matter.id}")
    assert page.status_code == 200, page.text[:300]
    names = re.findall(r'<a href="/projects/\d+\?folder=\d+"[^>]*>([^<]+)</a>', page.text)
    assert names == ["A first", *(f"L{level}" for level in range(990))]
    document = await op.http.get(f"/projects/{matter.id}/documents/{doc['id']}")
    assert document.status_code == 200 and ">L989</option>" in document.text.replace("— ", "")


async def test_a_form_id_that_is_not_one_is_refused_not_taken_for_the_root(
    client: httpx.AsyncClient, db: Database, operator: Actor, person: MakePerson
) -> None:
    matter = await make_matter(client, db, operator)
    folder = await client.post(
        matter.url("/folders"), json={"name": "Pleadings"}, headers=operator.headers
    )
    doc = (await upload(client, matter, b"%PDF x")).json()
    moved = await client.put(
        matter.url(f"/documents/{doc['id']}/{folder.json()['id']}"), headers=operator.headers
    )
    assert moved.status_code == 200, moved.text
    op = await person(operator)
    projects_before = (await client.get("/api/v1/projects", headers=operator.headers)).json()
    for bad in ("12abc", str(2**63), "-1"):
        move = await op.post(f"/projects/{matter.id}/documents/{doc['id']}/move", {"folder": bad})
        made = await op.post(f"/projects/{matter.id}/folders", {"name": "child", "parent": bad})
        project = await op.post("/projects", {"name": "P", "template": bad})
        for refused in (move, made, project):
            assert refused.status_code == 400, refused.text[:300]
            assert "is a number (an id)" in refused.text
    read = await client.get(matter.url(f"/documents/{doc['id']}"), headers=operator.headers)
    assert read.json()["folderId"] == folder.json()["id"]
    folders = await client.get(matter.url("/folders"), headers=operator.headers)
    assert [f["name"] for f in folders.json()] == ["Pleadings"]
    assert (await client.get("/api/v1/projects", headers=operator.headers)).json() == (
        projects_before
    )
    # Empty is the root, as the forms' first option sends it.
    to_root = await op.post(f"/projects/{matter.id}/documents/{doc['id']}/move", {"folder": ""})
    assert to_root.status_code == 303
    read = await client.get(matter.url(f"/documents/{doc['id']}"), headers=operator.headers)
    assert read.json()["folderId"] is None


async def test_a_user_who_is_not_an_operator_changes_no_ones_flags_in_the_pages(
    client: httpx.AsyncClient, operator: Actor, member: Actor, person: MakePerson
) -> None:
    """The user pages' forms are an operator's (DESIGN.md): anyone else posting them, for
    themselves or for an operator, is refused and nobody's operator or active flag moves."""
    someone = await person(member)
    for user_id, form, data in (
        (member.user_id, "operator", {"operator": "true"}),
        (operator.user_id, "operator", {"operator": "false"}),
        (operator.user_id, "active", {"active": "false"}),
    ):
        refused = await someone.post(f"/admin/users/{user_id}/{form}", data)
        assert refused.status_code == 403, (form, refused.text)
        assert "Only an operator can" in refused.text
    me = await client.get(f"/api/v1/user/id/{member.user_id}", headers=operator.headers)
    assert (me.json()["isOperator"], me.json()["active"]) == (False, True)
    theirs = await client.get(f"/api/v1/user/id/{operator.user_id}", headers=operator.headers)
    assert (theirs.json()["isOperator"], theirs.json()["active"]) == (True, True)
    # And the member's token is still not an operator's: no new project.
    assert (
        await client.post("/api/v1/projects", json={"name": "Mine"}, headers=member.headers)
    ).status_code == 403


async def test_an_operator_cannot_take_away_their_own_operator_flag_in_the_pages(
    client: httpx.AsyncClient, operator: Actor, person: MakePerson
) -> None:
    """It would leave them unable to give it back (another operator can): refused, kept."""
    op = await person(operator)
    refused = await op.post(f"/admin/users/{operator.user_id}/operator", {"operator": "false"})
    assert refused.status_code == 409, refused.text
    assert "your own operator flag" in refused.text
    me = await client.get(f"/api/v1/user/id/{operator.user_id}", headers=operator.headers)
    assert me.json()["isOperator"] is True
    assert (await op.http.get("/admin/users")).status_code == 200
