"""Answers kept while the database is unchanged (fastpath/answers.py): the database's version
moves with every commit, by any connection, and a page of documents kept under it is read
again after any change, to its documents or to the caller's access, made elsewhere."""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, insert, update

from casefolio.db.engine import Database
from casefolio.db.models import Document, ProjectUserGrant, SystemSetting
from casefolio.domain import document_pages
from casefolio.domain.roles import READ_ONLY
from casefolio.fastpath.answers import Answers
from casefolio.fastpath.statements import StatementReader
from tests.factories import Actor, make_actor
from tests.kept import TRIES, answered_as_kept


async def test_the_version_moves_with_every_commit_of_another_connection(
    db: Database, statements: StatementReader
) -> None:
    first = await _steady(statements)  # nothing committed: the same
    async with db.write() as session:
        # Any table: the version is the whole database's.
        await session.execute(insert(SystemSetting).values(key="answers-1", value=1))
    second = await _steady(statements)
    assert second != first
    async with db.write() as session:
        await session.execute(
            update(SystemSetting).where(SystemSetting.key == "answers-1").values(value=2)
        )
    assert await statements.version() not in (first, second)


async def _steady(statements: StatementReader) -> Hashable:
    """A version read twice in a row with nothing committed in between (tests/kept.py: on
    PostgreSQL, in a quiet moment of the cluster)."""
    version = await statements.version()
    for _ in range(TRIES):
        again = await statements.version()
        if again == version:
            return version
        version = again
    pytest.fail(f"the version moved on each of {TRIES} readings with nothing committed here")


def test_an_answer_is_kept_for_its_version_alone_and_within_bounds() -> None:
    answers = Answers(max_answers=3, max_bytes=1600)
    answers.put("a", 1, "page", 10)
    assert answers.get("a", 1) == "page"
    assert answers.get("a", 2) is None and answers.get("b", 1) is None
    answers.put("a", 2, "newer", 10)
    assert answers.get("a", 1) is None and answers.get("a", 2) == "newer"
    answers.put("big", 2, "x", 101)  # more than a sixteenth of the bytes: not kept
    assert answers.get("big", 2) is None
    for key in "bcd":
        answers.put(key, 2, key, 10)
    assert 0 < len(answers) <= 3 and answers.get("d", 2) == "d"


@pytest.fixture
def page_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the page reads that ran (not answered as kept)."""
    reads: list[int] = []
    real = document_pages.list_page

    async def counted(*args: object, **kwargs: object) -> object:
        reads.append(1)
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(document_pages, "list_page", counted)
    yield reads


async def test_a_page_is_read_again_after_any_change_made_elsewhere(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: Database,
    operator: Actor,
    page_reads: list[int],
) -> None:
    fast = app.state.casefolio.reads.fast
    made = await client.post("/api/v1/projects", json={"name": "Kept"}, headers=operator.headers)
    project = int(made.json()["id"])
    filed = await client.post(
        f"/api/v1/projects/{project}/documents",
        files={"file": ("a.pdf", b"%PDF a")},
        headers=operator.headers,
    )
    assert filed.status_code == 201, filed.text
    document = int(filed.json()["id"])
    reader = await make_actor(db)
    async with db.write() as session:
        await session.execute(
            insert(ProjectUserGrant).values(
                project_id=project, user_id=reader.user_id, role=READ_ONLY.name
            )
        )
    url = f"/api/v1/projects/{project}/documents?limit=100"
    first = await client.get(url, headers=reader.headers)
    assert first.status_code == 200 and len(first.json()) == 1
    # Fast, nothing committed since: answered as kept; plain, read again.
    again = await answered_as_kept(
        lambda: client.get(url, headers=reader.headers), page_reads, fast=fast
    )
    assert again.content == first.content
    # Another caller's page is its own, read for it.
    reads = len(page_reads)
    assert (await client.get(url, headers=operator.headers)).content == first.content
    assert len(page_reads) == reads + 1

    # A change through a connection of its own, as another process would make it.
    async with db.write() as session:
        await session.execute(update(Document).where(Document.id == document).values(title="Z"))
    changed = await client.get(url, headers=reader.headers)
    assert changed.json()[0]["title"] == "Z"

    # The caller's access taken away elsewhere: refused at once, not answered as kept.
    async with db.write() as session:
        await session.execute(
            delete(ProjectUserGrant).where(
                ProjectUserGrant.project_id == project, ProjectUserGrant.user_id == reader.user_id
            )
        )
    refused = await client.get(url, headers=reader.headers)
    assert refused.status_code in (403, 404), refused.text
    assert (await client.get(url, headers=reader.headers)).status_code == refused.status_code

    # Given back: listed again, as it is now.
    async with db.write() as session:
        await session.execute(
            insert(ProjectUserGrant).values(
                project_id=project, user_id=reader.user_id, role=READ_ONLY.name
            )
        )
    back = await client.get(url, headers=reader.headers)
    assert back.status_code == 200 and json.loads(back.content) == changed.json()
