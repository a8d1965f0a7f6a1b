"""Both dialects show one domain: a v1 document is a v3 Document whose versions are its
attachments, and what v3 changes, v1 sees."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from tests.api.v3.conftest import Matter, add_attachment_v3, basic, upload_v1
from tests.factories import Actor


async def _v1(client: httpx.AsyncClient, matter: Matter, actor: Actor, tail: str) -> Any:
    response = await client.get(
        f"/api/v1/projects/{matter.id}/documents{tail}", headers=actor.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_v1_upload_and_versions_appear_in_v3_as_attachments(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(
        client,
        matter.id,
        matter.writer,
        content=b"first",
        metadata={"title": "Contract", "description": "v1 *text*"},
    )
    replaced = await client.post(
        f"/api/v1/projects/{matter.id}/documents/{doc['id']}/replace",
        files={"file": ("contract-v2.pdf", b"second", "application/pdf")},
        headers=matter.writer.headers,
    )
    assert replaced.status_code == 201, replaced.text
    v1_versions = await _v1(client, matter, matter.reader, f"/{doc['id']}/versions")

    v3 = (await client.get(f"/api/v3/documents/{doc['id']}", headers=basic(matter.reader))).json()
    assert (v3["id"], v3["title"]) == (int(doc["id"]), "Contract")
    assert v3["description"]["raw"] == "v1 *text*"
    assert v3["description"]["html"] == "<p>v1 <em>text</em></p>"
    attachments = v3["_embedded"]["attachments"]["_embedded"]["elements"]
    assert [a["id"] for a in attachments] == [int(v["id"]) for v in v1_versions]
    assert [a["fileName"] for a in attachments] == ["exhibit.pdf", "contract-v2.pdf"]
    assert [a["digest"]["hash"] for a in attachments] == [v["sha256"] for v in v1_versions]
    assert attachments[1]["digest"]["hash"] == hashlib.sha256(b"second").hexdigest()
    content = await client.get(
        attachments[0]["_links"]["downloadLocation"]["href"], headers=basic(matter.reader)
    )
    assert content.content == b"first"


async def test_v3_attachment_is_a_new_current_v1_version(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer, content=b"first")
    added = await add_attachment_v3(
        client,
        int(doc["id"]),
        matter.writer,
        content=b"from v3",
        metadata={
            "fileName": "v3.txt",
            "description": {"raw": "uploaded by an OpenProject client"},
        },
    )
    assert added.status_code == 201, added.text
    attachment_id = added.json()["id"]

    current = await _v1(client, matter, matter.reader, f"/{doc['id']}")
    assert current["currentVersion"]["id"] == str(attachment_id)
    assert current["currentVersion"]["number"] == 2
    assert current["currentVersion"]["fileName"] == "v3.txt"
    versions = await _v1(client, matter, matter.reader, f"/{doc['id']}/versions")
    assert [v["id"] for v in versions][-1] == str(attachment_id)
    downloaded = await client.get(
        f"/api/v1/projects/{matter.id}/documents/{doc['id']}/content", headers=matter.reader.headers
    )
    assert downloaded.content == b"from v3"


async def test_v3_edits_and_deletes_show_in_v1_and_back(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    patched = await client.patch(
        f"/api/v3/documents/{doc['id']}",
        json={"title": "Renamed in v3", "description": {"raw": "new"}},
        headers=basic(matter.writer),
    )
    assert patched.status_code == 200
    v1 = await _v1(client, matter, matter.reader, f"/{doc['id']}")
    assert (v1["title"], v1["description"]) == ("Renamed in v3", "new")

    changed = await client.patch(
        f"/api/v1/projects/{matter.id}/documents/{doc['id']}",
        json={"title": "Renamed in v1"},
        headers=matter.writer.headers,
    )
    assert changed.status_code == 200, changed.text
    v3 = (await client.get(f"/api/v3/documents/{doc['id']}", headers=basic(matter.reader))).json()
    assert v3["title"] == "Renamed in v1"

    added = (await add_attachment_v3(client, int(doc["id"]), matter.writer)).json()
    deleted = await client.delete(f"/api/v3/attachments/{added['id']}", headers=basic(matter.admin))
    assert deleted.status_code == 204
    versions = await _v1(client, matter, matter.reader, f"/{doc['id']}/versions")
    assert [v["id"] for v in versions] == [doc["currentVersion"]["id"]]
