"""The project page's reads (domain/browse.py): what the list shows, its filters and
paging, on the read model's reader and on a plain session alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, update

from casefolio.db.engine import Database
from casefolio.db.models import Document, ProjectUserGrant
from casefolio.domain import browse
from casefolio.domain.errors import NotFound
from casefolio.domain.principal import Principal
from tests.api.v1.conftest import make_matter, upload
from tests.factories import Actor
from tests.kept import answered_as_kept
from tests.web.conftest import Person

TITLES = [
    "50% settlement.pdf",
    "500 settlement.pdf",
    "a_b note.pdf",
    "ab note.pdf",
    "x/y.pdf",
    "MÜLLER brief.pdf",
    "ΟΔΟΣ İstanbul.pdf",
]


async def test_the_list_shows_the_current_file_and_filters_titles_literally(
    app: FastAPI, client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    matter = await make_matter(client, db, operator)
    ids = {}
    for title in TITLES:
        # A file's name has no "/" (LIKE's escape character here): such a title is set after.
        made = await upload(client, matter, title.encode(), title.replace("/", ""))
        assert made.status_code == 201, made.text
        ids[title] = made.json()["id"]
        if "/" in title:
            renamed = await client.patch(
                matter.url(f"/documents/{ids[title]}"),
                json={"title": title},
                headers=matter.writer.headers,
            )
            assert renamed.status_code == 200, renamed.text
    # A second version: the list shows the current file's name, number and size.
    replaced = await client.post(
        matter.url(f"/documents/{ids['ab note.pdf']}/replace"),
        content=b"second version, longer",
        params={"fileName": "ab note v2.pdf"},
        headers={**matter.writer.headers, "Content-Type": "application/pdf"},
    )
    assert replaced.status_code in (200, 201), replaced.text
    folder = await client.post(
        matter.url("/folders"), json={"name": "Pleadings"}, headers=matter.admin.headers
    )
    assert folder.status_code == 201, folder.text
    reader = Principal(matter.reader.user_id, matter.reader.email, "Reader", False)
    outsider = Principal(matter.outsider.user_id, matter.outsider.email, "Outsider", False)

    async def page(who: Principal, **listing: object) -> browse.ProjectPage:
        ask = partial(
            browse.project_page,
            who=who,
            project_id=matter.id,
            listing=browse.Listing(**listing),  # type: ignore[arg-type]
        )
        fast = await app.state.casefolio.reads.read(ask)
        async with db.read() as session:
            plain = await ask(session)
        assert fast == plain  # the fast reader and a session answer alike
        return fast

    def titles(shown: browse.ProjectPage) -> list[str]:
        return [d.title for d in shown.documents.items]

    everything = await page(reader)
    assert everything.project.name == "Smith v Jones"
    assert everything.scope.role.name == "Read Only"
    assert titles(everything)[0] == "ab note.pdf"  # newest change first
    assert [f.name for f in everything.folders or []] == ["Pleadings"]
    newest = everything.documents.items[0]
    assert (newest.file_name, newest.number, newest.size) == ("ab note v2.pdf", 2, 22)
    assert (await page(reader, title_contains="50%")).documents.items[0].title == TITLES[0]
    assert titles(await page(reader, title_contains="50%")) == ["50% settlement.pdf"]
    assert titles(await page(reader, title_contains="A_B")) == ["a_b note.pdf"]
    assert titles(await page(reader, title_contains="x/y")) == ["x/y.pdf"]
    assert titles(await page(reader, title_contains="%")) == ["50% settlement.pdf"]
    # Case-insensitive beyond ASCII on both databases (SQLite's own lower() is ASCII's).
    assert titles(await page(reader, title_contains="müller")) == ["MÜLLER brief.pdf"]
    # Letters Python lowers otherwise than PostgreSQL (İ, a final Σ): both sides are lowered
    # by the database (PostgreSQL found neither).
    assert titles(await page(reader, title_contains="ΟΔΟΣ")) == ["ΟΔΟΣ İstanbul.pdf"]
    assert titles(await page(reader, title_contains="İSTANBUL")) == ["ΟΔΟΣ İstanbul.pdf"]
    assert titles(await page(reader, folder_id=int(folder.json()["id"]))) == []
    walked, cursor = [], None
    while True:
        shown = await page(reader, sort="title", limit=2, cursor=cursor)
        walked += titles(shown)
        if shown.documents.next_cursor is None:
            break
        cursor = shown.documents.next_cursor
    assert walked == sorted(TITLES)
    walked, cursor = [], None
    while True:
        shown = await page(reader, limit=2, cursor=cursor)
        walked += titles(shown)
        if shown.documents.next_cursor is None:
            break
        cursor = shown.documents.next_cursor
    assert walked == titles(everything) and len(walked) == len(TITLES)
    with pytest.raises(NotFound):
        await page(outsider)
    with pytest.raises(NotFound):
        await page(reader, folder_id=10**12)


async def test_the_page_is_read_again_after_any_change_made_elsewhere(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: Database,
    operator: Actor,
    person: Callable[[Actor], Awaitable[Person]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The page's read and its rendered list are kept while the database is unchanged
    (fastpath/answers.py), so a change or a grant taken away by another connection, as
    another process would make it, shows at the next request."""
    reads: list[int] = []
    real = browse.project_page

    async def counted(*args: Any, **kwargs: Any) -> browse.ProjectPage:
        reads.append(1)
        shown: browse.ProjectPage = await real(*args, **kwargs)
        return shown

    monkeypatch.setattr(browse, "project_page", counted)
    matter = await make_matter(client, db, operator)
    document = (await upload(client, matter, b"first", "first.pdf")).json()["id"]
    reader = await person(matter.reader)
    url = f"/projects/{matter.id}"
    alone = {"HX-Request": "true", "HX-Target": "documents"}
    first = await reader.http.get(url)
    assert first.status_code == 200 and "first.pdf" in first.text
    listed = await reader.http.get(url, headers=alone)
    assert "first.pdf" in listed.text and "<html" not in listed.text
    # Fast, nothing committed since: answered as kept; plain, read again.
    fast = app.state.casefolio.reads.fast
    again = await answered_as_kept(lambda: reader.http.get(url), reads, fast=fast)
    assert again.text == first.text

    async with db.write() as session:
        await session.execute(
            update(Document).where(Document.id == int(document)).values(title="Renamed")
        )
    changed = await reader.http.get(url)
    assert "Renamed" in changed.text
    assert "Renamed" in (await reader.http.get(url, headers=alone)).text

    async with db.write() as session:
        await session.execute(
            delete(ProjectUserGrant).where(
                ProjectUserGrant.project_id == matter.id,
                ProjectUserGrant.user_id == matter.reader.user_id,
            )
        )
    for headers in ({}, alone):
        refused = await reader.http.get(url, headers=headers)
        assert refused.status_code == 404 and "Renamed" not in refused.text
