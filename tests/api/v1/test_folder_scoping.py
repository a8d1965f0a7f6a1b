"""A folder belongs to one project: its name is taken there only, and it is listed,
found by name, listed into and filed into only there."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.v1.conftest import Matter, upload
from tests.factories import Actor


async def _other_project_folder(
    client: httpx.AsyncClient, operator: Actor, name: str
) -> dict[str, Any]:
    other = await client.post("/api/v1/projects", json={"name": "Other"}, headers=operator.headers)
    assert other.status_code == 201, other.text
    made = await client.post(
        f"/api/v1/projects/{other.json()['id']}/folders",
        json={"name": name},
        headers=operator.headers,
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_a_name_taken_in_another_project_is_free_here(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    await _other_project_folder(client, operator, "Pleadings")
    made = await client.post(
        matter.url("/folders"), json={"name": "Pleadings"}, headers=matter.writer.headers
    )
    assert made.status_code == 201, made.text
    listed = await client.get(matter.url("/folders"), headers=matter.reader.headers)
    assert [f["name"] for f in listed.json()] == ["Pleadings"]


async def test_another_projects_folder_is_neither_listed_nor_found_by_name(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    theirs = await _other_project_folder(client, operator, "Theirs")
    mine = await client.post(
        matter.url("/folders"), json={"name": "Mine"}, headers=matter.writer.headers
    )
    listed = await client.get(matter.url("/folders"), headers=matter.reader.headers)
    assert [f["id"] for f in listed.json()] == [mine.json()["id"]]
    by_name = await client.get(matter.url("/folders/Theirs"), headers=matter.reader.headers)
    assert by_name.status_code == 404, by_name.text
    for params in ({}, {"q": "exhibit"}):  # listed, or searched (best match first)
        in_it = await client.get(
            matter.url(f"/documents/folder/{theirs['id']}"),
            params=params,
            headers=matter.reader.headers,
        )
        assert in_it.status_code == 404, (params, in_it.text)
        assert in_it.json()["detail"] == f"Folder {theirs['id']} not found in project {matter.id}."


async def test_a_document_is_not_moved_into_another_projects_folder(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    theirs = await _other_project_folder(client, operator, "Theirs")
    doc = (await upload(client, matter)).json()
    moved = await client.put(
        matter.url(f"/documents/{doc['id']}/{theirs['id']}"), headers=matter.writer.headers
    )
    assert moved.status_code == 404, moved.text
    after = await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    assert after.json() == doc
