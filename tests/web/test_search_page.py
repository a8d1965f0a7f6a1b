"""The search page and the header's search box: the API's search (search/service.py) with its
access rules, the snippet escaped, invalid queries a 400 page saying why, keyset paging.
The worker's indexer runs here by hand (the test app runs no worker)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from html import unescape

import httpx
import pytest

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.search.index import Indexer
from tests.api.v1.conftest import Matter, make_matter
from tests.factories import Actor
from tests.search.conftest import index_all, upload
from tests.web.conftest import Person

MakePerson = Callable[[Actor], Awaitable[Person]]
HIT_LINK = re.compile(r'<a href="/projects/(\d+)/documents/(\d+)">([^<]*)</a>')


@pytest.fixture
async def indexer(settings: Settings, db: Database) -> AsyncIterator[Indexer]:
    made = Indexer(settings, db)
    yield made
    await made.close()


@pytest.fixture
async def matter(client: httpx.AsyncClient, db: Database, operator: Actor) -> Matter:
    return await make_matter(client, db, operator)


def hits(page: httpx.Response) -> list[str]:
    """The titles of the hits on a search page, in order."""
    assert page.status_code == 200, page.text
    return [unescape(title) for _, _, title in HIT_LINK.findall(page.text)]


def next_url(page: httpx.Response) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', page.text)
    return unescape(found.group(1)) if found else None


async def test_a_hit_links_its_document_with_project_folder_and_an_escaped_snippet(
    client: httpx.AsyncClient,
    matter: Matter,
    indexer: Indexer,
    person: MakePerson,
    settings: Settings,
) -> None:
    folder = await client.post(
        matter.url("/folders"), json={"name": "Pleadings"}, headers=matter.writer.headers
    )
    text = b"<script>alert(1)</script> the indemnity cap; fees < costs & damages > 0"
    doc = await upload(client, matter.writer, matter.id, "x.txt", text)
    moved = await client.put(
        matter.url(f"/documents/{doc['id']}/{folder.json()['id']}"),
        headers=matter.writer.headers,
    )
    assert moved.status_code == 200, moved.text
    await index_all(indexer)
    reader = await person(matter.reader)

    page = await reader.http.get("/search", params={"q": "indemnity"})
    assert hits(page) == ["x.txt"]
    assert f'<a href="/projects/{matter.id}/documents/{doc["id"]}">x.txt</a>' in page.text
    assert "Smith v Jones \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} Pleadings" in page.text
    [snippet] = re.findall(r'<p class="snippet">(.*?)</p>', page.text)
    assert "<mark>indemnity</mark>" in snippet
    # The document's text is never markup: escaped (PostgreSQL's ts_headline drops what looks
    # like a tag altogether, SQLite's snippet keeps it, escaped).
    assert "<script" not in snippet and "fees &lt; costs &amp; damages" in snippet
    if not settings.effective_database_url.startswith("postgresql"):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in snippet
    assert re.sub(r"</?mark>", "", snippet).count("<") == 0
    assert 'value="indemnity"' in page.text  # the header's box keeps the query


async def test_only_what_the_caller_can_read_is_found(
    client: httpx.AsyncClient,
    db: Database,
    operator: Actor,
    matter: Matter,
    indexer: Indexer,
    person: MakePerson,
) -> None:
    await upload(client, matter.writer, matter.id, "ours.txt", b"the escrow account")
    other = await make_matter(client, db, operator)
    await upload(client, other.writer, other.id, "theirs.txt", b"another escrow account")
    await index_all(indexer)

    outsider = await person(matter.outsider)
    page = await outsider.http.get("/search", params={"q": "escrow"})
    assert hits(page) == [] and "Nothing found" in page.text and ".txt" not in page.text
    scoped = await outsider.http.get("/search", params={"q": "escrow", "projectId": matter.id})
    assert scoped.status_code == 404 and ".txt" not in scoped.text

    reader = await person(matter.reader)
    assert hits(await reader.http.get("/search", params={"q": "escrow"})) == ["ours.txt"]
    op = await person(operator)
    assert sorted(hits(await op.http.get("/search?q=escrow"))) == ["ours.txt", "theirs.txt"]
    # "This project only": the box on a project's page, checked on its results.
    project_page = await op.http.get(f"/projects/{other.id}")
    assert f'name="projectId" value="{other.id}">' in project_page.text
    only = await op.http.get("/search", params={"q": "escrow", "projectId": other.id})
    assert hits(only) == ["theirs.txt"]
    assert f'name="projectId" value="{other.id}" checked>' in only.text


async def test_the_next_page_continues_where_the_first_ended(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer, person: MakePerson
) -> None:
    names = [f"p{n:02}.txt" for n in range(23)]
    for n, name in enumerate(names):
        await upload(client, matter.writer, matter.id, name, b"deposit " * (n % 4 + 1))
    await index_all(indexer)
    reader = await person(matter.reader)
    first = await reader.http.get("/search", params={"q": "deposit"})
    url = next_url(first)
    assert len(hits(first)) == 20 and url and url.startswith("/search?q=deposit&cursor=")
    second = await reader.http.get(url)
    assert len(hits(second)) == 3 and next_url(second) is None
    assert sorted(hits(first) + hits(second)) == names
    # In one project: the next page stays in it.
    scoped = await reader.http.get("/search", params={"q": "deposit", "projectId": matter.id})
    url = next_url(scoped)
    assert url and f"&projectId={matter.id}&cursor=" in url
    assert sorted(hits(scoped) + hits(await reader.http.get(url))) == names


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "a*"}, "A prefix search (word*) needs at least 2 characters."),
        ({"q": "-draft"}, "not only -excluded ones"),
        ({"q": "x" * 10_000}, "A search query may have at most 500 characters."),
        ({"q": "cap", "cursor": "abc"}, "cursor"),
        ({"q": "cap", "cursor": "not a cursor!"}, "This address is not valid: cursor"),
        ({"q": "cap", "projectId": "99999999999999999999"}, "This address is not valid"),
        ({"q": "cap", "projectId": "x"}, "This address is not valid"),
    ],
)
async def test_an_invalid_query_is_a_400_page_saying_why(
    matter: Matter, person: MakePerson, params: dict[str, str], message: str
) -> None:
    reader = await person(matter.reader)
    page = await reader.http.get("/search", params=params)
    assert page.status_code == 400, page.text
    assert message in unescape(page.text) and 'role="alert"' in page.text


async def test_an_empty_query_is_the_empty_search_page_and_every_page_has_the_box(
    matter: Matter, person: MakePerson
) -> None:
    reader = await person(matter.reader)
    for query in ("", "q=", "q=%20%20"):
        page = await reader.http.get(f"/search?{query}")
        assert page.status_code == 200 and "Type words in the search box" in page.text
        assert "<ol" not in page.text
    projects = await reader.http.get("/projects")
    assert '<form method="get" action="/search" role="search"' in projects.text
    assert '<label for="site-search" class="sr">Search documents</label>' in projects.text
    assert 'name="projectId"' not in projects.text  # no project: no "this project only"
    assert (await reader.post("/signout")).status_code == 303
    anonymous = await reader.http.get("/search?q=cap")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/signin")
