"""`/api/v3/documents` full-text filters (`search`, `attachment_content`) over the text the
worker extracted from each document's current version, under the collection's access rule."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.search.index import Indexer
from tests.api.v3.conftest import Matter, basic
from tests.factories import Actor

INVALID_QUERY = "urn:openproject-org:api:v3:errors:InvalidQuery"


def _filter(name: str, operator: str, *values: str) -> str:
    return json.dumps([{name: {"operator": operator, "values": list(values)}}])


async def _file(
    client: httpx.AsyncClient, actor: Actor, project_id: int, name: str, text: str
) -> int:
    made = await client.post(
        f"/api/v1/projects/{project_id}/documents",
        params={"fileName": name},
        content=text.encode(),
        headers={**actor.headers, "Content-Type": "text/plain"},
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


async def _ids(client: httpx.AsyncClient, actor: Actor, filters: str, status: int = 200) -> Any:
    answer = await client.get(
        "/api/v3/documents", params={"filters": filters}, headers=basic(actor)
    )
    assert answer.status_code == status, answer.text
    body = answer.json()
    if status != 200:
        return body
    assert body["total"] == len(body["_embedded"]["elements"])
    return {element["id"] for element in body["_embedded"]["elements"]}


@pytest.fixture
async def filed(
    client: httpx.AsyncClient, matter: Matter, settings: Settings, db: Database
) -> dict[str, int]:
    ids = {
        "cap": await _file(
            client, matter.writer, matter.id, "letter.txt", "The indemnity cap is ten million."
        ),
        "escrow": await _file(
            client, matter.writer, matter.id, "escrow.txt", "Escrow agent appointed."
        ),
        "titled": await _file(
            client, matter.writer, matter.id, "Indemnity memo.txt", "Nothing of note here."
        ),
        "hidden": await _file(
            client,
            matter.outsider,
            matter.other_project_id,
            "theirs.txt",
            "Their indemnity cap.",
        ),
    }
    await _index_everything(settings, db)
    return ids


async def test_attachment_content_finds_the_text_and_its_negation(
    client: httpx.AsyncClient, matter: Matter, filed: dict[str, int]
) -> None:
    found = await _ids(client, matter.reader, _filter("attachment_content", "~", '"indemnity cap"'))
    assert found == {filed["cap"]}
    missing = await _ids(client, matter.reader, _filter("attachment_content", "!~", "indemnity"))
    assert missing == {filed["escrow"], filed["titled"]}
    assert await _ids(client, matter.reader, _filter("attachment_content", "~", "escr*")) == {
        filed["escrow"]
    }


async def test_search_matches_the_title_or_the_text(
    client: httpx.AsyncClient, matter: Matter, filed: dict[str, int]
) -> None:
    found = await _ids(client, matter.reader, _filter("search", "**", "indemnity"))
    assert found == {filed["cap"], filed["titled"]}


async def test_a_search_never_reaches_another_projects_documents(
    client: httpx.AsyncClient, matter: Matter, filed: dict[str, int]
) -> None:
    assert await _ids(client, matter.outsider, _filter("search", "**", "indemnity")) == {
        filed["hidden"]
    }
    assert await _ids(client, matter.reader, _filter("attachment_content", "~", "their")) == set()


async def test_only_the_current_versions_text_is_matched(
    client: httpx.AsyncClient,
    matter: Matter,
    filed: dict[str, int],
    settings: Settings,
    db: Database,
) -> None:
    replaced = await client.post(
        f"/api/v1/projects/{matter.id}/documents/{filed['escrow']}/replace",
        params={"fileName": "escrow.txt"},
        content=b"Escrow agent withdrawn.",
        headers={**matter.writer.headers, "Content-Type": "text/plain"},
    )
    assert replaced.status_code in (200, 201), replaced.text
    await _index_everything(settings, db)
    # "appointed" is the replaced version's text only.
    for name, operator in (("attachment_content", "~"), ("search", "**")):
        assert await _ids(client, matter.reader, _filter(name, operator, "appointed")) == set()
        found = await _ids(client, matter.reader, _filter(name, operator, "withdrawn"))
        assert found == {filed["escrow"]}
    missing = await _ids(client, matter.reader, _filter("attachment_content", "!~", "appointed"))
    assert missing == {filed["cap"], filed["escrow"], filed["titled"]}


@pytest.mark.parametrize(
    ("filters", "words"),
    [
        (_filter("search", "~", "cap"), "Operator is not set"),
        (_filter("attachment_content", "=", "cap"), "Operator is not set"),
        (_filter("attachment_content", "~"), "Values must be one text"),
        (_filter("search", "**", "a", "b"), "Values must be one text"),
        (_filter("search", "**", "  "), "Values must be one text"),
        (_filter("attachment_content", "~", '"unclosed'), "closing quote"),
    ],
)
async def test_a_bad_text_filter_is_invalid_query(
    client: httpx.AsyncClient, matter: Matter, filters: str, words: str
) -> None:
    body = await _ids(client, matter.reader, filters, status=400)
    assert body["errorIdentifier"] == INVALID_QUERY
    assert words in body["message"]


async def _index_everything(settings: Settings, db: Database) -> None:
    indexer = Indexer(settings, db)
    try:
        while await indexer.run_once():
            pass
    finally:
        await indexer.close()
