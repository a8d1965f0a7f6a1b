"""A list of documents shows each document exactly as reading it alone does (the list builds
its JSON itself, api/v1/documents_render.py `_listed`; the document read through DocumentOut)."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx

from casefolio.db.engine import Database
from casefolio.db.models import Document, DocumentVersion
from tests.factories import Actor


async def test_each_listed_document_is_what_its_get_answers(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    headers = operator.headers
    project = (
        await client.post("/api/v1/projects", json={"name": "Ünïcode v Roe"}, headers=headers)
    ).json()["id"]
    kinds = {"Court": "text", "Filed on": "date", "Pages": "number", "Sealed": "boolean"}
    for name, kind in kinds.items():
        made = await client.post(
            f"/api/v1/projects/{project}/fields", json={"name": name, "type": kind}, headers=headers
        )
        assert made.status_code == 201, made.text
    folder = (
        await client.post(
            f"/api/v1/projects/{project}/folders", json={"name": "Pleadings"}, headers=headers
        )
    ).json()["id"]
    values = {
        "Court": "Cour d\u2019appel \u2014 2e",
        "Filed on": "2026-01-31",
        "Pages": 12.5,
        "Sealed": True,
    }
    metadata = {"title": "Mémoire «final»", "folderId": folder, "fields": values}
    filed = [
        await client.post(
            f"/api/v1/projects/{project}/documents",
            files={"file": ("m.pdf", b"%PDF m"), "metadata": (None, json.dumps(metadata))},
            headers=headers,
        ),
        await client.post(
            f"/api/v1/projects/{project}/documents",
            params={"fileName": "plain.txt"},
            content=b"no fields, no folder",
            headers=headers,
        ),
    ]
    assert [r.status_code for r in filed] == [201, 201], [r.text for r in filed]
    listed = await client.get(f"/api/v1/projects/{project}/documents", headers=headers)
    assert listed.status_code == 200
    assert listed.headers["content-type"] == "application/json"
    items = listed.json()
    assert [item["id"] for item in items] == [r.json()["id"] for r in filed]
    for item in items:
        alone = await client.get(
            f"/api/v1/projects/{project}/documents/{item['id']}", headers=headers
        )
        assert item == alone.json()
    # Key order too, and the same compact UTF-8 as the document read's.
    alone = await client.get(
        f"/api/v1/projects/{project}/documents/{items[0]['id']}", headers=headers
    )
    assert listed.content.startswith(b"[" + alone.content)
    in_folder = await client.get(
        f"/api/v1/projects/{project}/documents/folder/{folder}", headers=headers
    )
    assert in_folder.json() == items[:1]


async def test_a_document_whose_instants_differ_is_listed_as_its_get_answers(
    client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    """A listed document's three timestamps are formatted once when they are one instant
    (api/v1/documents.py `_listed`); here each differs, down to the millisecond."""
    headers = operator.headers
    project = (
        await client.post("/api/v1/projects", json={"name": "Instants"}, headers=headers)
    ).json()["id"]
    filed = await client.post(
        f"/api/v1/projects/{project}/documents",
        params={"fileName": "a.txt"},
        content=b"instants",
        headers=headers,
    )
    assert filed.status_code == 201, filed.text
    document = int(filed.json()["id"])
    async with db.write() as session:
        row = await session.get_one(Document, document)
        version = await session.get_one(DocumentVersion, row.current_version_id)
        version.created_at = row.created_at + timedelta(milliseconds=1)
        row.updated_at = row.created_at + timedelta(seconds=1, milliseconds=7)
    alone = await client.get(f"/api/v1/projects/{project}/documents/{document}", headers=headers)
    listed = await client.get(f"/api/v1/projects/{project}/documents", headers=headers)
    assert listed.status_code == 200
    assert listed.content == b"[" + alone.content + b"]"
    shown = alone.json()
    instants = {shown["createdAt"], shown["updatedAt"], shown["currentVersion"]["createdAt"]}
    assert len(instants) == 3, shown


async def test_strings_that_need_escaping_are_listed_as_their_get_answers(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    """Strings that JSON must escape (quotes, backslashes, control characters) and those it
    need not (non-ASCII, a line separator) are written by the list as by the GET, byte for
    byte."""
    headers = operator.headers
    project = (
        await client.post("/api/v1/projects", json={"name": "Escapes"}, headers=headers)
    ).json()["id"]
    made = await client.post(
        f"/api/v1/projects/{project}/fields",
        json={"name": 'Note "q"', "type": "text"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    titles = [
        'Smith "the elder" v. Jones',
        "C:\\cases\\2026",
        "tab\there",
        "Ünïcode \u2028 line separator",
        "emoji \U0001f4c4 and DEL \x7f",
        "plain",
    ]
    description = "first line\nsecond line\r\n\x01 control, \u00a0 no-break space, / slash"
    for n, title in enumerate(titles):
        metadata = {"title": title, "description": description, "fields": {'Note "q"': title}}
        filed = await client.post(
            f"/api/v1/projects/{project}/documents",
            files={"file": (f'n"{n}".txt', b"x%d" % n), "metadata": (None, json.dumps(metadata))},
            headers=headers,
        )
        assert filed.status_code == 201, filed.text
    listed = await client.get(f"/api/v1/projects/{project}/documents", headers=headers)
    assert listed.status_code == 200
    items = listed.json()
    shown = {item["title"] for item in items}
    assert '"' in "".join(shown) and "\\" in "".join(shown), shown  # escapes were needed
    alone = [
        (
            await client.get(f"/api/v1/projects/{project}/documents/{item['id']}", headers=headers)
        ).content
        for item in items
    ]
    assert listed.content == b"[" + b",".join(alone) + b"]"
