"""Whose changes a feed reader sees: an access change only by the user it is about (an
operator too sees only their own), and with `projectId` only that project's changes."""

from __future__ import annotations

from typing import Any

import httpx

from casefolio.db.engine import Database
from tests.factories import Actor
from tests.outbound.conftest import Matter, changes_since, feed_cursor, make_matter


async def _changes(
    client: httpx.AsyncClient, actor: Actor, cursor: str, **query: Any
) -> list[dict[str, Any]]:
    return (await changes_since(client, actor, cursor, **query))[0]


async def test_an_operators_feed_holds_no_one_elses_access_changes(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    start = await feed_cursor(client, operator)
    reader_start = await feed_cursor(client, matter.reader)
    removed = await client.delete(
        matter.url(f"/users/{matter.reader.email}"), headers=operator.headers
    )
    assert removed.status_code == 204, removed.text
    made = await client.post(
        matter.url("/documents?fileName=after.txt"), content=b"x", headers=operator.headers
    )
    assert made.status_code == 201, made.text
    # The operator sees the project's changes, but not that the reader lost it.
    seen = await _changes(client, operator, start)
    assert [(c["type"], c["projectId"]) for c in seen] == [("document.created", str(matter.id))]
    # The reader does (and nothing of the project after it).
    theirs = await _changes(client, matter.reader, reader_start)
    assert [c["type"] for c in theirs] == ["project.access_lost"]


async def test_a_feed_asked_for_one_project_holds_only_that_projects_changes(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    other = await make_matter(client, db, operator)
    # The reader may read both projects.
    granted = await client.put(
        other.url(f"/users/{matter.reader.email}"),
        json={"role": "Read Only"},
        headers=operator.headers,
    )
    assert granted.status_code == 200, granted.text
    start = await feed_cursor(client, matter.reader)
    for project in (other, matter, other):
        made = await client.post(
            project.url("/documents?fileName=a.txt"), content=b"x", headers=operator.headers
        )
        assert made.status_code == 201, made.text
    for who in (matter.reader, operator):
        only = await _changes(client, who, start, projectId=str(matter.id))
        assert [(c["type"], c["projectId"]) for c in only] == [("document.created", str(matter.id))]
    every = await _changes(client, matter.reader, start)
    assert [c["projectId"] for c in every] == [str(other.id), str(matter.id), str(other.id)]
