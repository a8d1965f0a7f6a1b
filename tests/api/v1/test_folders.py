from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database
from casefolio.db.models import Change
from casefolio.domain import access, folders
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from tests.api.v1.conftest import Matter, upload
from tests.factories import Actor
from tests.races import second_after_first


async def test_folder_tree_and_lookup_by_encoded_name(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    top = await client.post(
        matter.url("/folders"), json={"name": "the folder"}, headers=matter.writer.headers
    )
    assert top.status_code == 201
    child = await client.post(
        matter.url("/folders"),
        json={"name": "Drafts", "parentId": top.json()["id"]},
        headers=matter.writer.headers,
    )
    assert child.status_code == 201 and child.json()["parentId"] == top.json()["id"]
    found = await client.get(matter.url("/folders/the%20folder"), headers=matter.reader.headers)
    assert found.status_code == 200 and found.json()["id"] == top.json()["id"]
    listed = await client.get(matter.url("/folders"), headers=matter.reader.headers)
    assert [f["name"] for f in listed.json()] == ["the folder", "Drafts"]


async def test_a_folder_is_found_by_the_name_it_was_made_with(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """A name is stored trimmed and composed (NFC): the decomposed `é` a Mac sends, or a
    space at its end, made the folder but did not find it (404 naming the folder)."""
    made = await client.post(
        matter.url("/folders"), json={"name": "Cafe\u0301 "}, headers=matter.writer.headers
    )
    assert made.status_code == 201 and made.json()["name"] == "Caf\u00e9", made.text
    for sent in ("Cafe%CC%81%20", "Cafe%CC%81", "Caf%C3%A9", "%20Caf%C3%A9"):
        found = await client.get(matter.url(f"/folders/{sent}"), headers=matter.reader.headers)
        assert found.status_code == 200, (sent, found.text)
        assert found.json()["id"] == made.json()["id"]
    other = await client.get(matter.url("/folders/caf%C3%A9"), headers=matter.reader.headers)
    assert other.status_code == 404  # names are compared exactly, case included


async def test_sibling_names_are_unique_but_cousins_may_repeat(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    a = await client.post(matter.url("/folders"), json={"name": "A"}, headers=matter.writer.headers)
    b = await client.post(matter.url("/folders"), json={"name": "B"}, headers=matter.writer.headers)
    clash = await client.post(
        matter.url("/folders"), json={"name": "A"}, headers=matter.writer.headers
    )
    assert clash.status_code == 409 and "already exists" in clash.json()["detail"]
    for parent in (a, b):
        made = await client.post(
            matter.url("/folders"),
            json={"name": "Exhibits", "parentId": parent.json()["id"]},
            headers=matter.writer.headers,
        )
        assert made.status_code == 201
    ambiguous = await client.get(matter.url("/folders/Exhibits"), headers=matter.reader.headers)
    assert ambiguous.status_code == 409 and "parentId" in ambiguous.json()["detail"]
    chosen = await client.get(
        matter.url(f"/folders/Exhibits?parentId={b.json()['id']}"), headers=matter.reader.headers
    )
    assert chosen.status_code == 200 and chosen.json()["parentId"] == b.json()["id"]


async def test_delete_refuses_non_empty_folders(client: httpx.AsyncClient, matter: Matter) -> None:
    parent = await client.post(
        matter.url("/folders"), json={"name": "P"}, headers=matter.writer.headers
    )
    child = await client.post(
        matter.url("/folders"),
        json={"name": "C", "parentId": parent.json()["id"]},
        headers=matter.writer.headers,
    )
    holding = await client.delete(
        matter.url(f"/folders/{parent.json()['id']}"), headers=matter.writer.headers
    )
    assert holding.status_code == 409 and "folders" in holding.json()["detail"]

    doc = await upload(client, matter)
    moved = await client.put(
        matter.url(f"/documents/{doc.json()['id']}/{child.json()['id']}"),
        headers=matter.writer.headers,
    )
    assert moved.status_code == 200
    with_doc = await client.delete(
        matter.url(f"/folders/{child.json()['id']}"), headers=matter.writer.headers
    )
    assert with_doc.status_code == 409 and "documents" in with_doc.json()["detail"]
    assert (
        len((await client.get(matter.url("/folders"), headers=matter.reader.headers)).json()) == 2
    )

    await client.put(
        matter.url(f"/documents/{doc.json()['id']}/root"), headers=matter.writer.headers
    )
    assert (
        await client.delete(
            matter.url(f"/folders/{child.json()['id']}"), headers=matter.writer.headers
        )
    ).status_code == 204
    assert (
        await client.delete(
            matter.url(f"/folders/{parent.json()['id']}"), headers=matter.writer.headers
        )
    ).status_code == 204
    assert (await client.get(matter.url("/folders"), headers=matter.reader.headers)).json() == []


async def test_folder_errors(client: httpx.AsyncClient, matter: Matter) -> None:
    assert (
        await client.get(matter.url("/folders/nope"), headers=matter.reader.headers)
    ).status_code == 404
    bad_parent = await client.post(
        matter.url("/folders"), json={"name": "X", "parentId": 999}, headers=matter.writer.headers
    )
    assert bad_parent.status_code == 404
    empty = await client.post(
        matter.url("/folders"), json={"name": "  "}, headers=matter.writer.headers
    )
    assert empty.status_code == 400
    reader = await client.post(
        matter.url("/folders"), json={"name": "R"}, headers=matter.reader.headers
    )
    assert reader.status_code == 403 and "folders.write" in reader.json()["detail"]


async def test_two_deletes_of_a_folder_at_once_delete_and_report_it_once(
    client: httpx.AsyncClient, db: Database, matter: Matter, is_postgres: bool
) -> None:
    """The DELETE that commits second finds the folder gone: 404, and the feed has one
    folder.deleted (the ORM's delete of a row already gone only warned, and answered 204)."""
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: the second request never reads it live")
    made = await client.post(
        matter.url("/folders"), json={"name": "Contested"}, headers=matter.writer.headers
    )
    folder_id = made.json()["id"]
    writer = Principal(matter.writer.user_id, matter.writer.email, "Writer", False)

    async def first(session: AsyncSession) -> None:
        scope = await access.scope(session, writer, matter.id, Capability.FOLDERS_WRITE)
        await folders.delete(session, scope=scope, folder_id=int(folder_id))

    answer = await second_after_first(
        db,
        first,
        lambda: client.delete(matter.url(f"/folders/{folder_id}"), headers=matter.writer.headers),
    )
    assert answer.status_code == 404, answer.text
    async with db.read() as session:
        deleted = await session.scalars(
            select(Change.type).where(
                Change.type == "folder.deleted", Change.folder_id == int(folder_id)
            )
        )
        assert list(deleted) == ["folder.deleted"]
    listed = await client.get(matter.url("/folders"), headers=matter.reader.headers)
    assert folder_id not in [f["id"] for f in listed.json()]


async def test_a_create_answers_what_a_read_answers_and_a_refused_one_adds_nothing(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    h = matter.writer.headers
    made = await client.post(matter.url("/folders"), json={"name": "Pleadings"}, headers=h)
    assert made.status_code == 201
    read = await client.get(matter.url("/folders/Pleadings"), headers=h)
    assert made.json() == read.json() and made.json()["parentId"] is None
    other = await client.post("/api/v1/projects", json={"name": "Other"}, headers=operator.headers)
    elsewhere = await client.post(
        f"/api/v1/projects/{other.json()['id']}/folders",
        json={"name": "Theirs"},
        headers=operator.headers,
    )
    before = (await client.get(matter.url("/folders"), headers=h)).json()
    clash = await client.post(matter.url("/folders"), json={"name": "Pleadings"}, headers=h)
    assert clash.status_code == 409
    assert f"(id {made.json()['id']})" in clash.json()["detail"]
    foreign_parent = await client.post(
        matter.url("/folders"),
        json={"name": "Sub", "parentId": elsewhere.json()["id"]},
        headers=h,
    )
    assert foreign_parent.status_code == 404
    assert (await client.get(matter.url("/folders"), headers=h)).json() == before
    nested = await client.post(
        matter.url("/folders"), json={"name": "Pleadings", "parentId": made.json()["id"]}, headers=h
    )
    assert nested.status_code == 201 and nested.json()["parentId"] == made.json()["id"]
