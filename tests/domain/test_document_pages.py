"""document_pages.list_page reads the same pages through a session and through the database's
StatementReader (the path the list routes take), for every shape of the page's statement."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from casefolio.db.engine import Database
from casefolio.db.reads import Reader, read_all
from casefolio.domain import access, document_pages
from casefolio.domain.errors import NotFound
from casefolio.domain.pages import Page, PageRequest, decode_cursor
from casefolio.domain.principal import Principal
from casefolio.fastpath.statements import StatementReader
from tests.factories import Actor


def principal(actor: Actor, *, operator: bool = False) -> Principal:
    return Principal(actor.user_id, actor.email, "Test User", is_operator=operator)


async def both(
    db: Database, statements: StatementReader, **arguments: object
) -> Page[document_pages.ListedDocument]:
    """The page through each reader; they must agree."""
    async with db.read() as session:
        through_session = await document_pages.list_page(session, **arguments)  # type: ignore[arg-type]
    through_statements = await document_pages.list_page(statements, **arguments)  # type: ignore[arg-type]
    assert through_statements == through_session
    return through_statements


@pytest.fixture
async def filed(client: httpx.AsyncClient, operator: Actor) -> tuple[int, int, list[int]]:
    """A project with two fields, a folder, and five documents (two in the folder), some
    with field values; return the project, the folder and the document ids in filing order."""
    headers = operator.headers
    project = (
        await client.post("/api/v1/projects", json={"name": "Pages"}, headers=headers)
    ).json()["id"]
    for name, kind in (("Court", "text"), ("Filed on", "date")):
        made = await client.post(
            f"/api/v1/projects/{project}/fields", json={"name": name, "type": kind}, headers=headers
        )
        assert made.status_code == 201, made.text
    folder = (
        await client.post(
            f"/api/v1/projects/{project}/folders", json={"name": "Pleadings"}, headers=headers
        )
    ).json()["id"]
    ids = []
    for i in range(5):
        metadata: dict[str, object] = {"title": f"Doc {i}"}
        if i % 2 == 0:
            metadata["fields"] = {"Court": f"Court {i}", "Filed on": "2026-01-0" + str(i + 1)}
        if i >= 3:
            metadata["folderId"] = folder
        uploaded = await client.post(
            f"/api/v1/projects/{project}/documents",
            files={
                "file": (f"d{i}.pdf", b"%PDF " + bytes([i])),
                "metadata": (None, json.dumps(metadata)),
            },
            headers=headers,
        )
        assert uploaded.status_code == 201, uploaded.text
        ids.append(int(uploaded.json()["id"]))
    return int(project), int(folder), ids


async def test_pages_agree_through_a_session_and_the_statement_reader(
    db: Database, statements: StatementReader, operator: Actor, filed: tuple[int, int, list[int]]
) -> None:
    project, folder, ids = filed
    who = principal(operator, operator=True)
    first = await both(db, statements, who=who, project_id=project, page=PageRequest(limit=2))
    assert [v.id for v in first.items] == ids[:2]
    assert first.next_cursor is not None
    # Field values come with their documents, in field order; a document without any has none.
    assert [json.loads(e.value_json) for e in first.items[0].fields] == ["Court 0", "2026-01-01"]
    assert first.items[1].fields == ()
    after = decode_cursor(first.next_cursor, (datetime, int))
    second = await both(
        db, statements, who=who, project_id=project, page=PageRequest(limit=2, after=after)
    )
    assert [v.id for v in second.items] == ids[2:4]
    rest = await both(
        db,
        statements,
        who=who,
        project_id=project,
        page=PageRequest(limit=2, after=decode_cursor(second.next_cursor or "", (datetime, int))),
    )
    assert [v.id for v in rest.items] == ids[4:]
    assert rest.next_cursor is None
    in_folder = await both(
        db, statements, who=who, project_id=project, folder_id=folder, page=PageRequest()
    )
    assert [v.id for v in in_folder.items] == ids[3:]
    since = datetime.fromisoformat(first.items[1].updated_at.replace("Z", "+00:00"))
    changed = await both(
        db, statements, who=who, project_id=project, changed_since=since, page=PageRequest(limit=3)
    )
    assert [v.id for v in changed.items] == ids[1:4]
    everything = await both(db, statements, who=who, project_id=project, page=PageRequest(limit=5))
    assert [v.id for v in everything.items] == ids
    assert everything.next_cursor is None


async def test_refusals_agree_and_change_nothing(
    db: Database,
    statements: StatementReader,
    operator: Actor,
    member: Actor,
    filed: tuple[int, int, list[int]],
) -> None:
    project, _folder, ids = filed
    stranger = principal(member)
    who = principal(operator, operator=True)
    readers: list[Reader] = [statements]
    async with db.read() as session:
        readers.append(session)
        for reader in readers:
            with pytest.raises(NotFound, match=f"Project {project} not found"):
                await document_pages.list_page(
                    reader, who=stranger, project_id=project, page=PageRequest()
                )
            with pytest.raises(NotFound, match="Folder 999999 not found"):
                await document_pages.list_page(
                    reader,
                    who=who,
                    project_id=project,
                    folder_id=999999,
                    page=PageRequest(),
                )
    page = await both(db, statements, who=who, project_id=project, page=PageRequest())
    assert [v.id for v in page.items] == ids


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


async def test_a_batch_of_pages_reads_each_callers_rank_once_per_page(
    db: Database, operator: Actor, filed: tuple[int, int, list[int]]
) -> None:
    """On PostgreSQL pages asked for together are one statement (fastpath/batching.py); the
    caller's rank is an aggregate in a LATERAL of its own, run once per page, not once per
    row (a `SELECT (scalar subquery)` there is pulled up into the join and ran for every
    row). Read from the executed plan; every page still gets its rank and its rows."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("batched reads are PostgreSQL's")
    project, _folder, ids = filed
    read, names = document_pages._page_read(folder=False, since=False, after=False)
    keys = {"project_id": [project] * 3, "user_id": [operator.user_id] * 3, "limit": [2, 5, 3]}
    compiled = read.many.compile(dialect=db.engine.dialect)
    values = tuple(keys.get(name, compiled.params.get(name)) for name in compiled.positiontup or ())
    async with db.read_engine.connect() as conn:
        explained = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}", values)
        [[plan]] = explained.all()
        rows = (await conn.exec_driver_sql(str(compiled), values)).all()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    aggregates = [node for node in _plan_nodes(plan[0]["Plan"]) if node["Node Type"] == "Aggregate"]
    assert [node["Actual Loops"] for node in aggregates] == [3], aggregates
    rank = names.index("rank")
    async with db.read() as session:
        parameters = {"project_id": project, "user_id": operator.user_id}
        [(_, expected)] = await read_all(session, access.PROJECT_AND_RANK, parameters)
    assert {row[rank] for row in rows} == {expected}
    by_page = [[row[0] for row in rows if row[-1] == position] for position in (1, 2, 3)]
    assert [list(dict.fromkeys(page)) for page in by_page] == [ids[:2], ids[:5], ids[:3]]
