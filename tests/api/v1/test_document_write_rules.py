"""What a move and a version's deletion change, and what they leave alone: updatedAt is
bumped by a real change only, the only live version stays even when others are in the
trash, and a version is reached only through its own document."""

from __future__ import annotations

import httpx

from casefolio.db.engine import Database
from tests import traces
from tests.api.v1.conftest import Matter, upload
from tests.api.v1.test_documents import OLD, _set_updated_at
from tests.api.v1.test_version_trash import current, delete_version, document, versions_of
from tests.factories import Actor

OLD_DAY = OLD.date().isoformat()


async def test_a_move_bumps_updated_at_and_a_move_to_where_it_is_changes_nothing(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    h = matter.writer.headers
    folder = (await client.post(matter.url("/folders"), json={"name": "F"}, headers=h)).json()
    doc = (await upload(client, matter)).json()
    into = matter.url(f"/documents/{doc['id']}/{folder['id']}")
    await _set_updated_at(db, {int(doc["id"]): OLD})

    moved = await client.put(into, headers=h)

    assert moved.status_code == 200, moved.text
    assert moved.json()["folderId"] == folder["id"]
    assert moved.json()["updatedAt"] > "2001"  # bumped from OLD
    await _set_updated_at(db, {int(doc["id"]): OLD})
    start = await traces.mark(db)

    again = await client.put(into, headers=h)

    assert again.status_code == 200, again.text
    assert again.json()["folderId"] == folder["id"]
    assert again.json()["updatedAt"].startswith(OLD_DAY)  # not moved: not changed
    assert (await traces.since(db, start)).entries == []


async def test_deleting_a_version_bumps_its_documents_updated_at(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await document(client, matter, b"first", b"second")
    _, second = (v["id"] for v in await versions_of(client, matter, doc))
    await _set_updated_at(db, {int(doc): OLD})

    assert (await delete_version(client, matter, doc, second)).status_code == 204

    read = await client.get(matter.url(f"/documents/{doc}"), headers=matter.reader.headers)
    assert read.json()["updatedAt"] > "2001"


async def test_the_last_live_version_stays_though_others_are_in_the_trash(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await document(client, matter, b"first", b"second")
    first, second = (v["id"] for v in await versions_of(client, matter, doc))
    assert (await delete_version(client, matter, doc, second)).status_code == 204

    last = await delete_version(client, matter, doc, first)

    assert last.status_code == 409, last.text
    assert last.json()["detail"] == "You cannot delete the only version of a document"
    assert [v["id"] for v in await versions_of(client, matter, doc)] == [first]
    assert (await current(client, matter, doc))["id"] == first


async def test_a_version_is_not_found_under_another_document(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    mine = await document(client, matter, b"mine")
    theirs = await document(client, matter, b"theirs one", b"theirs two")
    before = await versions_of(client, matter, theirs)
    for version in before:
        url = matter.url(f"/documents/{mine}/versions/{version['id']}")
        read = await client.get(url, headers=matter.reader.headers)
        assert read.status_code == 404, read.text
        deleted = await delete_version(client, matter, mine, version["id"])
        assert deleted.status_code == 404, deleted.text
    assert await versions_of(client, matter, theirs) == before


async def test_a_write_through_another_projects_url_is_not_found_and_changes_nothing(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    """The caller is admin of both projects: only the document's own project reaches it."""
    other = await client.post("/api/v1/projects", json={"name": "Other"}, headers=operator.headers)
    elsewhere = f"/api/v1/projects/{other.json()['id']}"
    granted = await client.put(
        f"{elsewhere}/users/{matter.admin.email}",
        json={"role": "Project Admin"},
        headers=operator.headers,
    )
    assert granted.status_code in (200, 204), granted.text
    h = matter.admin.headers
    folder = (await client.post(matter.url("/folders"), json={"name": "F"}, headers=h)).json()
    doc = await document(client, matter, b"first", b"second")
    moved = await client.put(matter.url(f"/documents/{doc}/{folder['id']}"), headers=h)
    assert moved.status_code == 200, moved.text
    before = await client.get(matter.url(f"/documents/{doc}"), headers=h)
    versions = await versions_of(client, matter, doc)

    for method, tail, body in (
        ("POST", "", {"title": "Renamed"}),
        ("PATCH", "", {"title": "Renamed"}),
        ("PUT", "/root", None),
        ("DELETE", f"/versions/{versions[-1]['id']}", None),
        ("DELETE", "", None),
    ):
        refused = await client.request(
            method, f"{elsewhere}/documents/{doc}{tail}", json=body, headers=h
        )
        assert refused.status_code == 404, (method, tail, refused.text)

    after = await client.get(matter.url(f"/documents/{doc}"), headers=h)
    assert after.json() == before.json()
    assert await versions_of(client, matter, doc) == versions
