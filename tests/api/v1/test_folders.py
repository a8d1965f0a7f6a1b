from __future__ import annotations

import httpx

from tests.api.v1.conftest import Matter, upload
from tests.factories import Actor


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
