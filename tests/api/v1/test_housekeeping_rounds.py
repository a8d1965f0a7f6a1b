"""Housekeeping's rounds when the database refuses what one document's purge or retention
writes: that document is left as it is, and every other one, and the other job, go on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import cast

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from casefolio.db.engine import Database
from casefolio.db.models import Document, DocumentVersion
from casefolio.domain import access, holds, retention
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from tests.api.v1.conftest import Matter, file_version
from tests.api.v1.test_holds import delete_document, document, place
from tests.api.v1.test_retention import NOW, backdate, set_rule, trashed
from tests.api.v1.test_trash import RestoredMeanwhile, housekeeper
from tests.api.v1.test_version_trash import delete_version, versions_of
from tests.api.v1.test_version_trash import document as versioned
from tests.refusals import refusing


async def _documents(db: Database) -> set[str]:
    async with db.read() as session:
        return {str(i) for i in await session.scalars(select(Document.id))}


async def test_a_document_whose_purge_is_refused_holds_back_no_other_nor_retention(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """A purge the database refused for one document failed the purge of its whole batch
    (200) and every later one, hour after hour (and the round's retention job, which came
    after it, waited for the next round)."""
    refused = await document(client, matter, b"refused")
    gone = [await document(client, matter, f"gone {n}".encode()) for n in range(2)]
    old = await document(client, matter, b"past retention")
    for doc in (refused, *gone):
        assert (await delete_document(client, matter, doc)).status_code == 204
    await backdate(db, old, NOW - timedelta(days=400))
    await set_rule(client, matter, 1, "trash")
    async with refusing(db, "documents", f"OLD.id = {refused}", "DELETE"):
        ran = await housekeeper(app, days_later=31).run_once()
    assert ran == ["purge", "retention"]
    assert await _documents(db) == {refused, old}
    assert await trashed(db) == {refused, old}


async def test_a_version_whose_purge_is_refused_holds_back_no_other(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    h = matter.admin.headers
    docs = [await document(client, matter, f"v1 of {n}".encode()) for n in range(2)]
    first_versions = []
    for doc in docs:
        versions = (await client.get(matter.url(f"/documents/{doc}/versions"), headers=h)).json()
        first_versions.append(versions[0]["id"])
        await file_version(client, matter, doc, f"v2 of {doc}".encode(), actor=matter.admin)
        deleted = await client.delete(
            matter.url(f"/documents/{doc}/versions/{versions[0]['id']}"), headers=h
        )
        assert deleted.status_code == 204, deleted.text
    async with refusing(db, "document_versions", f"OLD.id = {first_versions[0]}", "DELETE"):
        await housekeeper(app, days_later=31).run_once()
    async with db.read() as session:
        left = set(await session.scalars(select(DocumentVersion.id)))
    assert int(first_versions[0]) in left and int(first_versions[1]) not in left


async def test_a_document_retention_cannot_trash_holds_back_no_other(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """Retention moved every project's documents in one transaction: one document the
    database refused to move stopped the job for all, day after day."""
    refused, other = await document(client, matter, b"refused"), await document(client, matter)
    for doc in (refused, other):
        await backdate(db, doc, NOW - timedelta(days=400))
    await set_rule(client, matter, 1, "trash")
    when = f"NEW.id = {refused} AND NEW.trashed_at IS NOT NULL"
    async with refusing(db, "documents", when, "UPDATE"):
        assert "retention" in await housekeeper(app, days_later=0).run_once()
    assert await trashed(db) == {other}


_WAITING = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def _hold_committed_while_purging(
    app: FastAPI, db: Database, matter: Matter, doc: str
) -> None:
    """Place a hold on `doc` in a transaction of its own, start the purge (31 days on), and
    commit the hold once the purge waits for it, or once the purge has ended (as it did
    before the purge and a hold's placing took turns on the project)."""
    admin = Principal(matter.admin.user_id, matter.admin.email, "Admin", False)
    purged = anyio.Event()

    async def purge() -> None:
        await housekeeper(app, days_later=31).run_once()
        purged.set()

    placing = db.writer()
    await placing.begin()
    try:
        project = await access.scope(placing, admin, matter.id, Capability.HOLDS_MANAGE)
        new = holds.NewHold("Late", "Litigation expected", "document", int(doc))
        await holds.create(placing, scope=project, new=new)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(purge)
            with anyio.fail_after(30):
                while not purged.is_set():
                    async with db.read() as session:
                        if await session.scalar(_WAITING):
                            break
                    await anyio.sleep(0.01)
            await placing.commit()
    finally:
        await placing.close()


async def test_a_hold_placed_while_the_purge_runs_keeps_its_document(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter, is_postgres: bool
) -> None:
    """PostgreSQL: a hold on a trashed document committed while the purge ran (after it had
    read the holds, before it committed) was answered 201, and the document it holds was
    purged all the same. The purge and a hold's placing now take turns on the project."""
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: a hold and the purge never overlap")
    doc = await document(client, matter, b"evidence")
    assert (await delete_document(client, matter, doc)).status_code == 204
    await _hold_committed_while_purging(app, db, matter, doc)
    assert doc in await _documents(db)


async def _retention_one_by_one(
    db: Database, refused: str, meanwhile: Callable[[], Awaitable[object]]
) -> None:
    """Apply retention (a rule set to trash) with the database refusing to move `refused`,
    so that after trying every document at once it moves them one by one; `meanwhile` is
    committed between the two. Retention must look again, and move nothing."""
    # Its writes: every document at once (refused), then `refused` alone, then the other.
    racing = cast("Database", RestoredMeanwhile(db, meanwhile, at_write=2))
    when = f"NEW.id = {refused} AND NEW.trashed_at IS NOT NULL"
    async with refusing(db, "documents", when, "UPDATE"):
        assert await retention.apply(racing, now=NOW) == []
    assert await trashed(db) == set()


async def test_a_hold_placed_while_retention_moves_documents_apart_keeps_its_document(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """When retention moves documents one by one (the database refused one), a hold placed
    after it planned, before it moved the document, keeps the document where it is."""
    refused, held = await document(client, matter, b"refused"), await document(client, matter)
    for doc in (refused, held):
        await backdate(db, doc, NOW - timedelta(days=400))
    await set_rule(client, matter, 1, "trash")

    async def hold() -> None:
        await place(client, matter, "document", held)

    await _retention_one_by_one(db, refused, meanwhile=hold)
    read = await client.get(matter.url(f"/documents/{held}"), headers=matter.admin.headers)
    assert read.status_code == 200, read.text


async def test_a_document_changed_while_retention_moves_documents_apart_stays(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """A new version filed after retention planned, before it moved the document, makes
    the document recent again: it stays."""
    refused, changed = await document(client, matter, b"refused"), await document(client, matter)
    for doc in (refused, changed):
        await backdate(db, doc, NOW - timedelta(days=400))
    await set_rule(client, matter, 1, "trash")

    await _retention_one_by_one(
        db, refused, meanwhile=partial(file_version, client, matter, changed, b"a new version")
    )
    read = await client.get(matter.url(f"/documents/{changed}"), headers=matter.admin.headers)
    assert read.status_code == 200, read.text


async def test_a_hold_placed_while_the_purge_runs_keeps_its_trashed_version(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter, is_postgres: bool
) -> None:
    """PostgreSQL: as for a document (above), a hold on the document of a trashed version,
    committed while the purge of versions ran, keeps the version."""
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: a hold and the purge never overlap")
    doc = await versioned(client, matter, b"first version, evidence", b"second version")
    first = (await versions_of(client, matter, doc))[0]
    assert (await delete_version(client, matter, doc, first["id"])).status_code == 204
    await _hold_committed_while_purging(app, db, matter, doc)
    async with db.read() as session:
        left = set(await session.scalars(select(DocumentVersion.id)))
    assert int(first["id"]) in left
    trash = await client.get(matter.url("/trash/versions"), headers=matter.admin.headers)
    assert [v["id"] for v in trash.json()] == [first["id"]]
