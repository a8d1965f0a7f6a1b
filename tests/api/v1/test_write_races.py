"""Writes that race, on PostgreSQL, whose writers overlap (SQLite's take turns, so there the
second simply runs after the first). Each test holds one write open in a transaction of its
own, sends the other through the API, lets it reach the database (waiting for a lock, or
done), then commits the first: the outcome must be one the two would have in either order,
and reported as it happened."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Change
from casefolio.domain import access, folders, holds, projects, trash, unclaimed
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from tests.api.v1.conftest import Matter, upload
from tests.api.v3.conftest import basic
from tests.factories import Actor


@pytest.fixture(autouse=True)
def _postgres_only(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: the second waits for the first to commit")


def principal(actor: Actor) -> Principal:
    return Principal(actor.user_id, actor.email, "Test User", is_operator=False)


async def meanwhile(db: Database, request: Awaitable[httpx.Response]) -> asyncio.Task[Any]:
    """Start `request`; return once it waits for a lock held by the test, or has answered."""
    task = asyncio.ensure_future(request)
    async with db.read() as session:
        for _ in range(2000):
            if task.done():
                return task
            waiting = await session.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
            if waiting:
                return task
            await asyncio.sleep(0.005)
    raise AssertionError("the request neither answered nor came to wait for a lock")


async def count(db: Database, model: Any, kind: str) -> int:
    """Audit entries (by action) or changes (by type) of one kind."""
    column = model.action if model is AuditEntry else model.type
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).where(column == kind)) or 0)


Write = Callable[[httpx.AsyncClient, Matter, dict[str, Any]], Awaitable[httpx.Response]]

WRITES: dict[str, Write] = {
    "rename": lambda client, matter, doc: client.patch(
        matter.url(f"/documents/{doc['id']}"),
        json={"title": "renamed"},
        headers=matter.writer.headers,
    ),
    "move": lambda client, matter, doc: client.put(
        matter.url(f"/documents/{doc['id']}/{doc['folder']}"), headers=matter.writer.headers
    ),
    "new version": lambda client, matter, doc: client.post(
        matter.url(f"/documents/{doc['id']}/replace"),
        content=b"three",
        params={"fileName": "racing.pdf"},
        headers={**matter.writer.headers, "Content-Type": "application/pdf"},
    ),
    "version delete": lambda client, matter, doc: client.delete(
        matter.url(f"/documents/{doc['id']}/versions/{doc['first_version']}"),
        headers=matter.admin.headers,
    ),
}


async def _containerless_upload(client: httpx.AsyncClient, matter: Matter, name: str) -> int:
    """v3: an upload without a document, by the matter's admin; its attachment id."""
    sent = await client.post(
        "/api/v3/attachments",
        files={
            "metadata": (None, json.dumps({"fileName": name}), "application/json"),
            "file": (name, name.encode(), "application/pdf"),
        },
        headers=basic(matter.admin),
    )
    assert sent.status_code == 201, sent.text
    return int(sent.json()["id"])


@pytest.mark.parametrize("write", WRITES)
async def test_a_write_racing_the_documents_deletion_finds_it_gone(
    client: httpx.AsyncClient, db: Database, matter: Matter, write: str
) -> None:
    doc = (await upload(client, matter, b"one", "racing.pdf")).json()
    replaced = await client.post(
        matter.url(f"/documents/{doc['id']}/replace"),
        content=b"two",
        params={"fileName": "racing.pdf"},
        headers={**matter.writer.headers, "Content-Type": "application/pdf"},
    )
    assert replaced.status_code == 201, replaced.text
    made = await client.post(
        matter.url("/folders"), json={"name": "F"}, headers=matter.admin.headers
    )
    doc |= {"folder": made.json()["id"], "first_version": doc["currentVersion"]["id"]}
    async with db.write() as session:
        await trash.delete(
            session, who=principal(matter.admin), project_id=matter.id, document_id=int(doc["id"])
        )
        racing = await meanwhile(db, WRITES[write](client, matter, doc))
    answer = await racing
    assert answer.status_code == 404, answer.text
    # Nothing changed in the trash: restored, it is as it was deleted.
    restored = await client.post(
        matter.url(f"/trash/{doc['id']}/restore"), headers=matter.admin.headers
    )
    assert restored.status_code == 200, restored.text
    shown = (
        await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    ).json()
    assert (shown["title"], shown["folderId"]) == (doc["title"], doc["folderId"])
    listed = await client.get(
        matter.url(f"/documents/{doc['id']}/versions"), headers=matter.reader.headers
    )
    assert len(listed.json()) == 2


async def test_two_releases_of_a_hold_at_once_release_it_once(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    placed = await client.post(
        matter.url("/holds"),
        json={"name": "Hold", "reason": "Litigation expected", "scope": "project"},
        headers=matter.admin.headers,
    )
    assert placed.status_code == 201, placed.text
    hold_id = int(placed.json()["id"])
    async with db.write() as session:
        scope = await access.scope(
            session, principal(matter.admin), matter.id, Capability.HOLDS_MANAGE
        )
        await holds.release(session, scope=scope, hold_id=hold_id, reason="Settled")
        racing = await meanwhile(
            db,
            client.request(
                "DELETE",
                matter.url(f"/holds/{hold_id}"),
                json={"reason": "Withdrawn"},
                headers=matter.admin.headers,
            ),
        )
    answer = await racing
    assert answer.status_code == 200, answer.text
    assert answer.json()["releaseReason"] == "Settled"
    assert await count(db, AuditEntry, "hold.released") == 1
    assert await count(db, Change, "hold.released") == 1


async def test_losing_both_paths_to_a_project_at_once_reports_the_loss(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    """The reader holds the project directly and through a team; both go at once."""
    reader = matter.reader
    team = (await client.post("/api/v1/teams", json={"name": "T"}, headers=operator.headers)).json()
    for url in (
        f"/api/v1/teams/{team['id']}/users/{reader.email}",
        matter.url(f"/teams/{team['id']}"),
    ):
        answer = await client.put(url, json={"role": "Read Only"}, headers=operator.headers)
        assert answer.status_code == 200, answer.text
    lost_before = await count(db, Change, "project.access_lost")
    async with db.write() as session:
        await projects.revoke_user(
            session, who=principal(matter.admin), project_id=matter.id, email=reader.email
        )
        racing = await meanwhile(
            db,
            client.delete(
                f"/api/v1/teams/{team['id']}/users/{reader.email}", headers=operator.headers
            ),
        )
    answer = await racing
    assert answer.status_code == 204, answer.text
    gone = await client.get(matter.url(), headers=reader.headers)
    assert gone.status_code == 404
    assert await count(db, Change, "project.access_lost") == lost_before + 1


async def trashed_in_a_folder(
    client: httpx.AsyncClient, matter: Matter
) -> tuple[int, dict[str, Any]]:
    """A folder, and a document filed in it and then moved to the trash."""
    made = await client.post(
        matter.url("/folders"), json={"name": "F"}, headers=matter.admin.headers
    )
    folder = int(made.json()["id"])
    doc = (await upload(client, matter, b"filed", "filed.pdf")).json()
    moved = await client.put(
        matter.url(f"/documents/{doc['id']}/{folder}"), headers=matter.writer.headers
    )
    assert moved.status_code == 200, moved.text
    deleted = await client.delete(
        matter.url(f"/documents/{doc['id']}"), headers=matter.admin.headers
    )
    assert deleted.status_code == 204
    return folder, doc


async def test_a_restore_into_a_folder_being_deleted_keeps_the_folder(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    folder, doc = await trashed_in_a_folder(client, matter)
    async with db.write() as session:
        restored = await trash.restore(
            session, who=principal(matter.admin), project_id=matter.id, document_id=int(doc["id"])
        )
        restored_into = restored.folder_id
        racing = await meanwhile(
            db, client.delete(matter.url(f"/folders/{folder}"), headers=matter.admin.headers)
        )
    answer = await racing
    assert answer.status_code == 409, answer.text
    assert str(restored_into) == str(folder)
    shown = (
        await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    ).json()
    assert str(shown["folderId"]) == str(folder)


async def test_a_restore_racing_its_folders_deletion_answers_where_the_document_went(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """The deletion first: the restore waits for it and finds the document moved to the
    root, which its answer says (it named the folder it had read before waiting)."""
    folder, doc = await trashed_in_a_folder(client, matter)
    async with db.write() as session:
        scope = await access.scope(
            session, principal(matter.admin), matter.id, Capability.FOLDERS_WRITE
        )
        await folders.delete(session, scope=scope, folder_id=folder)
        racing = await meanwhile(
            db, client.post(matter.url(f"/trash/{doc['id']}/restore"), headers=matter.admin.headers)
        )
    answer = await racing
    assert answer.status_code == 200, answer.text
    assert answer.json()["folderId"] is None
    shown = await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    assert shown.json()["folderId"] is None


async def test_deleting_an_upload_a_document_is_claiming_deletes_the_version_it_became(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """v3: a containerless upload's DELETE racing the PATCH that links it to a document.
    The claim first (by the uploader, a Project Admin): the DELETE waits, then deletes the
    version the upload has become (the document keeps its other), instead of the row the
    document now points at."""
    doc = (await upload(client, matter, b"first", "first.pdf")).json()
    upload_id = await _containerless_upload(client, matter, "second.pdf")
    async with db.write() as session:
        await unclaimed.claim(
            session,
            who=principal(matter.admin),
            document_id=int(doc["id"]),
            version_ids=[upload_id],
        )
        racing = await meanwhile(
            db, client.delete(f"/api/v3/attachments/{upload_id}", headers=basic(matter.admin))
        )
    answer = await racing
    assert answer.status_code == 204, answer.text
    shown = await client.get(matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["currentVersion"]["id"] == doc["currentVersion"]["id"]
    trashed = await client.get(matter.url("/trash/versions"), headers=matter.admin.headers)
    assert [v["id"] for v in trashed.json()] == [str(upload_id)]


async def test_two_documents_claiming_one_upload_at_once_get_it_once(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """v3: two PATCHes linking the same containerless upload to two documents. The second
    waits for the first's lock, then finds the upload taken and is refused, its document
    unchanged: the upload did not move to it, leaving the first document pointing at a
    version of another."""
    first = (await upload(client, matter, b"first", "first.pdf")).json()
    other = (await upload(client, matter, b"other", "other.pdf")).json()
    upload_id = await _containerless_upload(client, matter, "shared.pdf")
    async with db.write() as session:
        await unclaimed.claim(
            session,
            who=principal(matter.admin),
            document_id=int(first["id"]),
            version_ids=[upload_id],
        )
        racing = await meanwhile(
            db,
            client.patch(
                f"/api/v3/documents/{other['id']}",
                json={"_links": {"attachments": [{"href": f"/api/v3/attachments/{upload_id}"}]}},
                headers=basic(matter.admin),
            ),
        )
    answer = await racing
    assert answer.status_code == 422, answer.text
    assert "cannot be claimed" in answer.json()["message"], answer.text
    for doc, current in ((first, upload_id), (other, int(other["currentVersion"]["id"]))):
        shown = await client.get(
            matter.url(f"/documents/{doc['id']}"), headers=matter.reader.headers
        )
        assert int(shown.json()["currentVersion"]["id"]) == current
    listed = await client.get(
        f"/api/v3/documents/{other['id']}/attachments", headers=basic(matter.reader)
    )
    assert [a["id"] for a in listed.json()["_embedded"]["elements"]] == [
        int(other["currentVersion"]["id"])
    ]
