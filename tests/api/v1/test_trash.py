"""The trash: a deleted document is gone for every read, restorable with the same id,
versions and fields, and purged after CASEFOLIO_TRASH_DAYS (bytes included unless shared,
never while held). Time moves through an injected clock; nothing sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Change, Document
from casefolio.db.types import utcnow
from casefolio.domain import gc, purge, trash
from casefolio.domain.principal import Principal
from casefolio.outbound.housekeeping import Housekeeper
from tests.api.v1.conftest import Matter, file_version, upload
from tests.api.v1.test_holds import delete_document, document, place, release
from tests.factories import Actor
from tests.races import second_after_first


async def feed_types(db: Database) -> list[str]:
    async with db.read() as session:
        return list(await session.scalars(select(Change.type).order_by(Change.id)))


async def blob_names(app: FastAPI) -> set[str]:
    return {sha async for sha, _ in app.state.casefolio.blobs.list()}


def housekeeper(app: FastAPI, days_later: float) -> Housekeeper:
    state = app.state.casefolio
    return Housekeeper(
        state.settings, state.db, state.blobs, clock=lambda: utcnow() + timedelta(days=days_later)
    )


async def test_a_deleted_document_disappears_from_every_read(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await document(client, matter, b"to trash")
    keep = await document(client, matter, b"to keep")
    h = matter.admin.headers

    assert (await delete_document(client, matter, doc)).status_code == 204

    assert (await client.get(matter.url(f"/documents/{doc}"), headers=h)).status_code == 404
    listed = await client.get(matter.url("/documents"), headers=h)
    assert [d["id"] for d in listed.json()] == [keep]
    synced = await client.get(matter.url("/documents?afterDate=2000-01-01"), headers=h)
    assert [d["id"] for d in synced.json()] == [keep]
    for path in ("/versions", "/content"):
        gone = await client.get(matter.url(f"/documents/{doc}{path}"), headers=h)
        assert gone.status_code == 404, path
    assert (await client.get(f"/api/v3/documents/{doc}", headers=h)).status_code == 404
    v3 = await client.get("/api/v3/documents", headers=h)
    assert v3.json()["total"] == 1
    assert [e["id"] for e in v3.json()["_embedded"]["elements"]] == [int(keep)]
    again = await delete_document(client, matter, doc)
    assert again.status_code == 404
    assert (await feed_types(db))[-1] == "document.deleted"
    async with db.read() as session:
        audited = await session.execute(
            select(AuditEntry.target_id, AuditEntry.details).where(
                AuditEntry.action == "document.deleted"
            )
        )
        assert [tuple(row) for row in audited] == [(int(doc), {"trash": True})]
    # Same bytes again: the trashed copy is no duplicate.
    fresh = await upload(client, matter, b"to trash", rejectDuplicate="true")
    assert fresh.status_code == 201, fresh.text


async def test_restore_gives_back_the_same_document_with_versions_and_fields(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    h = matter.admin.headers
    field = (
        await client.post(
            matter.url("/fields"), json={"name": "Custodian", "type": "text"}, headers=h
        )
    ).json()["id"]
    doc = await document(client, matter, b"v1")
    await file_version(client, matter, doc, b"v2", actor=matter.admin)
    await client.put(
        matter.url(f"/documents/{doc}/fields/{field}"), json={"value": "J. Smith"}, headers=h
    )
    before = (await client.get(matter.url(f"/documents/{doc}"), headers=h)).json()
    versions = (await client.get(matter.url(f"/documents/{doc}/versions"), headers=h)).json()
    await delete_document(client, matter, doc)

    trashed = await client.get(matter.url("/trash"), headers=h)
    assert trashed.status_code == 200
    [entry] = trashed.json()
    assert entry["id"] == doc and entry["purgeAfter"] > entry["trashedAt"]
    writer = await client.post(matter.url(f"/trash/{doc}/restore"), headers=matter.writer.headers)
    assert writer.status_code == 403 and "documents.delete" in writer.json()["detail"]

    restored = await client.post(matter.url(f"/trash/{doc}/restore"), headers=h)

    assert restored.status_code == 200, restored.text
    after = (await client.get(matter.url(f"/documents/{doc}"), headers=h)).json()
    assert after["id"] == doc
    assert after["currentVersion"] == before["currentVersion"]
    assert after["fields"] == before["fields"]
    # Changed now, after its deletion: a sync since then sees it again.
    assert after["updatedAt"] > entry["trashedAt"] > before["updatedAt"]
    synced = await client.get(
        matter.url("/documents"), params={"afterDate": entry["trashedAt"]}, headers=h
    )
    assert [d["id"] for d in synced.json()] == [doc]
    assert (
        await client.get(matter.url(f"/documents/{doc}/versions"), headers=h)
    ).json() == versions
    assert (await client.get(matter.url("/trash"), headers=h)).json() == []
    assert (await feed_types(db))[-1] == "document.restored"
    async with db.read() as session:
        audited = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "document.restored")
        )
    assert audited is not None
    assert audited.details["trashedAt"] == entry["trashedAt"]  # as the API showed it
    twice = await client.post(matter.url(f"/trash/{doc}/restore"), headers=h)
    assert twice.status_code == 404


async def test_purge_after_the_period_removes_rows_and_unshared_bytes(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    alone = await document(client, matter, b"only here")
    shared = await document(client, matter, b"twice")
    twin = await document(client, matter, b"twice")
    held = await document(client, matter, b"held in the trash")
    for doc in (alone, shared, held):
        assert (await delete_document(client, matter, doc)).status_code == 204
    hold = await place(client, matter, "document", held)
    blobs_before = await blob_names(app)

    assert "purge" in await housekeeper(app, days_later=29).run_once()
    async with db.read() as session:
        assert len(list(await session.scalars(select(Document.id)))) == 4  # too early

    await housekeeper(app, days_later=31).run_once()

    async with db.read() as session:
        left = set(await session.scalars(select(Document.id)))
        purged = list(
            await session.scalars(
                select(AuditEntry.target_id).where(AuditEntry.action == "document.purged")
            )
        )
    assert left == {int(twin), int(held)}
    assert sorted(purged) == sorted([int(alone), int(shared)])
    removed = blobs_before - await blob_names(app)
    assert len(removed) == 1  # "only here": "twice" is shared, the held one is kept
    assert "document.purged" in await feed_types(db)
    h = matter.admin.headers
    assert [e["id"] for e in (await client.get(matter.url("/trash"), headers=h)).json()] == [held]
    # Released, the held one goes at the next purge.
    await release(client, matter, hold)
    await housekeeper(app, days_later=32).run_once()
    async with db.read() as session:
        assert set(await session.scalars(select(Document.id))) == {int(twin)}


async def test_gc_never_removes_bytes_of_held_or_trashed_documents(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    held = await document(client, matter, b"held bytes")
    trashed = await document(client, matter, b"trashed bytes")
    await place(client, matter, "document", held)
    await delete_document(client, matter, trashed)
    before = await blob_names(app)
    state = app.state.casefolio

    report = await gc.collect(
        state.db, state.blobs, grace=timedelta(0), now=utcnow() + timedelta(days=400)
    )

    assert report.blobs == []
    assert await blob_names(app) == before


async def test_deleting_a_folder_of_trashed_documents_restores_them_to_the_root(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    h = matter.admin.headers
    made = await client.post(matter.url("/folders"), json={"name": "Old"}, headers=h)
    folder_id = made.json()["id"]
    doc = await document(client, matter, b"in old", folder_id=folder_id)
    await delete_document(client, matter, doc)

    assert (await client.delete(matter.url(f"/folders/{folder_id}"), headers=h)).status_code == 204
    restored = await client.post(matter.url(f"/trash/{doc}/restore"), headers=h)
    assert restored.status_code == 200
    assert restored.json()["folderId"] is None


async def test_trash_routes_hide_other_projects(client: httpx.AsyncClient, matter: Matter) -> None:
    doc = await document(client, matter)
    await delete_document(client, matter, doc)
    outsider = matter.outsider.headers
    assert (await client.get(matter.url("/trash"), headers=outsider)).status_code == 404
    denied = await client.post(matter.url(f"/trash/{doc}/restore"), headers=outsider)
    assert denied.status_code == 404
    body: Any = (await client.get(matter.url("/trash"), headers=matter.reader.headers)).json()
    assert "documents.delete" in body["detail"]


async def test_a_delete_and_a_restore_racing_their_twins_each_happen_once(
    client: httpx.AsyncClient, db: Database, matter: Matter, is_postgres: bool
) -> None:
    """Two DELETEs of one document at once (and then two restores): the one that commits
    second finds it already moved and answers 404, and the feed and the audit trail report
    one deletion and one restore. PostgreSQL only: SQLite's writers take turns, so there
    the second request reads the document as already moved."""
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: the second request never reads it live")
    doc = await document(client, matter, b"contested")
    admin = Principal(matter.admin.user_id, matter.admin.email, "Admin", False)
    racing = {
        "delete": (
            partial(trash.delete, who=admin, project_id=matter.id, document_id=int(doc)),
            lambda: delete_document(client, matter, doc),
        ),
        "restore": (
            partial(trash.restore, who=admin, project_id=matter.id, document_id=int(doc)),
            lambda: client.post(matter.url(f"/trash/{doc}/restore"), headers=matter.admin.headers),
        ),
    }
    for first_call, second_request in racing.values():
        answer = await second_after_first(db, first_call, second_request)
        assert answer.status_code == 404, answer.text

    assert (await feed_types(db))[-2:] == ["document.deleted", "document.restored"]
    async with db.read() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.target_id == int(doc),
                    AuditEntry.action.in_(["document.deleted", "document.restored"]),
                )
            )
        )
    assert sorted(actions) == ["document.deleted", "document.restored"]
    shown = await client.get(matter.url(f"/documents/{doc}"), headers=matter.admin.headers)
    assert shown.status_code == 200


async def test_the_trash_lists_purge_after_the_configured_period(
    client: httpx.AsyncClient, matter: Matter, settings: Settings
) -> None:
    doc = await document(client, matter)
    await delete_document(client, matter, doc)

    [entry] = (await client.get(matter.url("/trash"), headers=matter.admin.headers)).json()

    period = datetime.fromisoformat(entry["purgeAfter"]) - datetime.fromisoformat(
        entry["trashedAt"]
    )
    assert period == timedelta(days=settings.trash_days) == timedelta(days=30)


@pytest.mark.parametrize("early", [True, False])
async def test_the_purge_takes_a_document_once_its_period_is_over_and_not_before(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter, early: bool
) -> None:
    doc = await document(client, matter)
    await delete_document(client, matter, doc)
    [entry] = (await client.get(matter.url("/trash"), headers=matter.admin.headers)).json()
    due = datetime.fromisoformat(entry["purgeAfter"])
    at = due - timedelta(minutes=1) if early else due + timedelta(minutes=1)
    state = app.state.casefolio

    await Housekeeper(state.settings, state.db, state.blobs, clock=lambda: at).run_once()

    async with db.read() as session:
        left = set(await session.scalars(select(Document.id)))
    assert left == ({int(doc)} if early else set())


async def test_one_projects_trash_neither_lists_nor_restores_anothers_documents(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    doc = await document(client, matter)
    await delete_document(client, matter, doc)
    other = await client.post(
        "/api/v1/projects", json={"name": "Other matter"}, headers=operator.headers
    )
    elsewhere = f"/api/v1/projects/{other.json()['id']}/trash"

    listed = await client.get(elsewhere, headers=operator.headers)
    assert listed.status_code == 200 and listed.json() == []
    refused = await client.post(f"{elsewhere}/{doc}/restore", headers=operator.headers)
    assert refused.status_code == 404, refused.text

    h = matter.admin.headers
    assert [e["id"] for e in (await client.get(matter.url("/trash"), headers=h)).json()] == [doc]
    assert (await client.get(matter.url(f"/documents/{doc}"), headers=h)).status_code == 404


async def test_a_folder_hold_keeps_the_trashed_documents_of_the_folder_from_the_purge(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    h = matter.admin.headers
    box = (await client.post(matter.url("/folders"), json={"name": "Box"}, headers=h)).json()["id"]
    inner = await client.post(
        matter.url("/folders"), json={"name": "Inner", "parentId": box}, headers=h
    )
    docs = [
        await document(client, matter, b"boxed", folder_id=box),
        await document(client, matter, b"deeper", folder_id=inner.json()["id"]),
    ]
    for doc in docs:
        assert (await delete_document(client, matter, doc)).status_code == 204
    # Placed after the deletions: a hold on the folder covers what waits in its trash.
    hold = await place(client, matter, "folder", box)

    await housekeeper(app, days_later=31).run_once()

    listed = (await client.get(matter.url("/trash"), headers=h)).json()
    assert [e["id"] for e in listed] == docs
    async with db.read() as session:
        assert set(await session.scalars(select(Document.id))) == {int(d) for d in docs}
    # Released, they go at the next purge.
    await release(client, matter, hold)
    await housekeeper(app, days_later=32).run_once()
    async with db.read() as session:
        assert set(await session.scalars(select(Document.id))) == set()


class RestoredMeanwhile:
    """The purge's (or retention's) database, with something (a restore, a hold) committed
    just before its `at_write`th write transaction, after it read what is due: it must
    look again."""

    def __init__(
        self, db: Database, meanwhile: Callable[[], Awaitable[object]], at_write: int = 1
    ) -> None:
        self._db, self._meanwhile, self._writes_left = db, meanwhile, at_write

    def read(self) -> AbstractAsyncContextManager[AsyncSession]:
        return self._db.read()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        self._writes_left -= 1
        if self._writes_left == 0:
            await self._meanwhile()
        async with self._db.write() as session:
            yield session


async def test_a_document_restored_after_the_purge_read_the_trash_is_not_purged(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await document(client, matter, b"restored in time")
    assert (await delete_document(client, matter, doc)).status_code == 204
    h = matter.admin.headers

    async def restore() -> None:
        restored = await client.post(matter.url(f"/trash/{doc}/restore"), headers=h)
        assert restored.status_code == 200, restored.text

    blobs = app.state.casefolio.blobs
    racing = cast("Database", RestoredMeanwhile(db, restore))
    report = await purge.purge_expired(racing, blobs, now=utcnow() + timedelta(days=31), days=30)

    assert report.purged == []
    read = await client.get(matter.url(f"/documents/{doc}/content"), headers=h)
    assert read.status_code == 200 and read.content == b"restored in time"
    async with db.read() as session:
        purged = await session.scalars(
            select(AuditEntry.id).where(AuditEntry.action == "document.purged")
        )
        assert list(purged) == []


async def test_the_purge_reports_each_content_once_removed_or_shared(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    shared = await document(client, matter, b"twice")
    twin = await document(client, matter, b"twice")
    alone = await document(client, matter, b"only here")
    for doc in (shared, alone):
        assert (await delete_document(client, matter, doc)).status_code == 204
    blobs_before = await blob_names(app)

    report = await purge.purge_expired(
        db, app.state.casefolio.blobs, now=utcnow() + timedelta(days=31), days=30
    )

    assert sorted(report.purged) == sorted([int(shared), int(alone)])
    assert (len(report.blobs_removed), report.blobs_shared, report.blobs_left_to_gc) == (1, 1, 0)
    assert blobs_before - await blob_names(app) == set(report.blobs_removed)
    read = await client.get(matter.url(f"/documents/{twin}/content"), headers=matter.admin.headers)
    assert read.status_code == 200 and read.content == b"twice"


async def test_the_trash_lists_documents_in_the_order_they_were_deleted(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    older, newer = await document(client, matter, b"filed first"), await document(client, matter)
    for doc in (newer, older):
        assert (await delete_document(client, matter, doc)).status_code == 204

    listed = await client.get(matter.url("/trash"), headers=matter.admin.headers)

    assert [e["id"] for e in listed.json()] == [newer, older]
    paged = await client.get(matter.url("/trash?limit=1"), headers=matter.admin.headers)
    assert [e["id"] for e in paged.json()] == [newer]
