"""The version trash: a deleted version is gone for every read (its document's current
version falls back to the newest live one), restorable with the same id and bytes, and
purged after CASEFOLIO_TRASH_DAYS (bytes included unless shared, never while held).
Time moves through an injected clock; nothing sleeps."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Change, DocumentVersion
from casefolio.db.types import utcnow
from casefolio.domain import gc, purge
from casefolio.search.index import Indexer
from tests.api.v1.conftest import Matter
from tests.api.v1.test_holds import delete_document, place, release
from tests.api.v1.test_trash import RestoredMeanwhile, blob_names, feed_types, housekeeper
from tests.factories import Actor
from tests.search.conftest import index_all, indexer

__all__ = ["indexer"]


async def document(client: httpx.AsyncClient, matter: Matter, *contents: bytes) -> str:
    """A text document with one version per content, the last one current."""
    h = {**matter.writer.headers, "Content-Type": "text/plain"}
    made = await client.post(
        matter.url("/documents"), params={"fileName": "v1.txt"}, content=contents[0], headers=h
    )
    assert made.status_code == 201, made.text
    doc = str(made.json()["id"])
    for number, content in enumerate(contents[1:], start=2):
        replaced = await client.post(
            matter.url(f"/documents/{doc}/replace"),
            params={"fileName": f"v{number}.txt"},
            content=content,
            headers=h,
        )
        assert replaced.status_code in (200, 201), replaced.text
    return doc


async def versions_of(client: httpx.AsyncClient, matter: Matter, doc: str) -> list[dict[str, Any]]:
    listed = await client.get(
        matter.url(f"/documents/{doc}/versions"), headers=matter.admin.headers
    )
    assert listed.status_code == 200, listed.text
    return list(listed.json())


async def current(client: httpx.AsyncClient, matter: Matter, doc: str) -> dict[str, Any]:
    read = await client.get(matter.url(f"/documents/{doc}"), headers=matter.reader.headers)
    assert read.status_code == 200, read.text
    return dict(read.json()["currentVersion"])


async def content(client: httpx.AsyncClient, matter: Matter, doc: str, tail: str = "") -> bytes:
    got = await client.get(
        matter.url(f"/documents/{doc}{tail}/content"), headers=matter.reader.headers
    )
    assert got.status_code == 200, got.text
    return got.content


async def delete_version(
    client: httpx.AsyncClient, matter: Matter, doc: str, version: str
) -> httpx.Response:
    return await client.delete(
        matter.url(f"/documents/{doc}/versions/{version}"), headers=matter.admin.headers
    )


async def trashed_versions(client: httpx.AsyncClient, matter: Matter) -> list[dict[str, Any]]:
    listed = await client.get(matter.url("/trash/versions"), headers=matter.admin.headers)
    assert listed.status_code == 200, listed.text
    return list(listed.json())


async def restore(client: httpx.AsyncClient, matter: Matter, version: str) -> httpx.Response:
    return await client.post(
        matter.url(f"/trash/versions/{version}/restore"), headers=matter.admin.headers
    )


async def audited(db: Database, action: str) -> list[AuditEntry]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


async def version_rows(db: Database, doc: str) -> list[tuple[int, bool]]:
    """(id, trashed) of every row of the document's versions, trashed or not."""
    async with db.read() as session:
        rows = await session.execute(
            select(DocumentVersion.id, DocumentVersion.trashed_at)
            .where(DocumentVersion.document_id == int(doc))
            .order_by(DocumentVersion.id)
        )
        return [(version_id, trashed is not None) for version_id, trashed in rows]


async def live_rows(client: httpx.AsyncClient, matter: Matter, doc: str) -> list[tuple[int, bool]]:
    """`version_rows` as they are when every row is a listed (live) version."""
    return [(int(v["id"]), False) for v in await versions_of(client, matter, doc)]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_deleted_version_disappears_from_every_read_and_waits_in_the_trash(
    client: httpx.AsyncClient, db: Database, matter: Matter, indexer: Indexer
) -> None:
    doc = await document(client, matter, b"alpha first words", b"beta second words")
    first, second = (v["id"] for v in await versions_of(client, matter, doc))
    await index_all(indexer)
    r = matter.reader.headers
    hits = await client.get("/api/v1/search", params={"q": "beta"}, headers=r)
    assert [h["version"]["id"] for h in hits.json()] == [second]

    deleted = await delete_version(client, matter, doc, second)

    assert deleted.status_code == 204, deleted.text
    for tail in (f"/versions/{second}", f"/versions/{second}/content"):
        gone = await client.get(matter.url(f"/documents/{doc}{tail}"), headers=r)
        assert gone.status_code == 404, tail
    assert (await client.get(f"/api/v3/attachments/{second}", headers=r)).status_code == 404
    v3 = await client.get(f"/api/v3/documents/{doc}/attachments", headers=r)
    assert [a["id"] for a in v3.json()["_embedded"]["elements"]] == [int(first)]
    assert [v["id"] for v in await versions_of(client, matter, doc)] == [first]
    # The first version is current again: the document, its content, search.
    assert (await current(client, matter, doc))["id"] == first
    assert await content(client, matter, doc) == b"alpha first words"
    for versions in ("current", "all"):
        found = await client.get(
            "/api/v1/search", params={"q": "beta", "versions": versions}, headers=r
        )
        assert found.status_code == 200 and found.json() == [], versions
    alpha = await client.get("/api/v1/search", params={"q": "alpha"}, headers=r)
    assert [h["version"]["id"] for h in alpha.json()] == [first]
    # In the version trash; the document trash keeps its shape and has no entry.
    [entry] = await trashed_versions(client, matter)
    assert (entry["id"], entry["documentId"], entry["number"]) == (second, doc, 2)
    assert entry["sha256"] == sha(b"beta second words") and entry["documentTitle"] == "v1.txt"
    assert entry["purgeAfter"] > entry["trashedAt"]
    assert (await client.get(matter.url("/trash"), headers=matter.admin.headers)).json() == []
    assert (await feed_types(db))[-1] == "version.deleted"
    [audit] = await audited(db, "version.deleted")
    assert (audit.target_id, audit.details["trash"]) == (int(second), True)
    # Gone already: a second delete is a 404; the only live version stays (409).
    assert (await delete_version(client, matter, doc, second)).status_code == 404
    only = await delete_version(client, matter, doc, first)
    assert only.status_code == 409 and "only version" in only.json()["detail"]
    assert await version_rows(db, doc) == [(int(first), False), (int(second), True)]
    assert [v["id"] for v in await versions_of(client, matter, doc)] == [first]


async def test_restore_gives_back_the_same_version_and_the_right_current_one(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await document(client, matter, b"one", b"two", b"three")
    before = await versions_of(client, matter, doc)
    one, two, three = (v["id"] for v in before)
    updated = await client.get(matter.url(f"/documents/{doc}"), headers=matter.admin.headers)
    for version in (one, three):
        assert (await delete_version(client, matter, doc, version)).status_code == 204
    assert (await current(client, matter, doc))["id"] == two
    assert await content(client, matter, doc) == b"two"
    listed = await trashed_versions(client, matter)
    assert [e["id"] for e in listed] == [one, three]
    trashed_at = {e["id"]: e["trashedAt"] for e in listed}

    writer = await client.post(
        matter.url(f"/trash/versions/{three}/restore"), headers=matter.writer.headers
    )
    assert writer.status_code == 403 and "documents.delete" in writer.json()["detail"]
    assert [e["id"] for e in await trashed_versions(client, matter)] == [one, three]

    # An older version comes back without becoming current.
    restored = await restore(client, matter, one)
    assert restored.status_code == 200, restored.text
    assert restored.json()["id"] == one and restored.json()["number"] == 1
    assert (await current(client, matter, doc))["id"] == two
    # The newest comes back as the current one, with its bytes.
    assert (await restore(client, matter, three)).status_code == 200
    assert await current(client, matter, doc) == before[2]
    assert await content(client, matter, doc) == b"three"
    assert await content(client, matter, doc, f"/versions/{one}") == b"one"
    assert await versions_of(client, matter, doc) == before
    assert await trashed_versions(client, matter) == []
    after = await client.get(matter.url(f"/documents/{doc}"), headers=matter.admin.headers)
    assert after.json()["updatedAt"] > updated.json()["updatedAt"]
    assert (await feed_types(db))[-2:] == ["version.restored", "version.restored"]
    restores = await audited(db, "version.restored")
    assert [a.target_id for a in restores] == [int(one), int(three)]
    # The time it was trashed, as the API showed it.
    assert [a.details["trashedAt"] for a in restores] == [trashed_at[one], trashed_at[three]]
    assert (await restore(client, matter, three)).status_code == 404


async def test_the_versions_of_a_trashed_document_come_back_with_it(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await document(client, matter, b"old", b"new")
    old, new = (v["id"] for v in await versions_of(client, matter, doc))
    await delete_version(client, matter, doc, old)
    h = matter.admin.headers
    assert (await client.delete(matter.url(f"/documents/{doc}"), headers=h)).status_code == 204

    assert await trashed_versions(client, matter) == []
    refused = await restore(client, matter, old)
    assert refused.status_code == 404, refused.text

    assert (await client.post(matter.url(f"/trash/{doc}/restore"), headers=h)).status_code == 200
    assert [e["id"] for e in await trashed_versions(client, matter)] == [old]
    assert (await current(client, matter, doc))["id"] == new
    assert (await restore(client, matter, old)).status_code == 200
    assert [v["id"] for v in await versions_of(client, matter, doc)] == [old, new]


async def test_purge_removes_trashed_versions_and_unshared_bytes_never_held_ones(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alone = await document(client, matter, b"only in a trashed version", b"alone now")
    shared = await document(client, matter, b"shared bytes", b"shared now")
    await document(client, matter, b"shared bytes")  # a live version with the same bytes
    held = await document(client, matter, b"held version", b"held now")
    doomed = {}
    for doc in (alone, shared, held):
        doomed[doc] = (await versions_of(client, matter, doc))[0]["id"]
        assert (await delete_version(client, matter, doc, doomed[doc])).status_code == 204
    hold = await place(client, matter, "document", held)
    blobs_before = await blob_names(app)

    assert "purge" in await housekeeper(app, days_later=29).run_once()
    assert len(await trashed_versions(client, matter)) == 3  # too early

    with caplog.at_level(logging.INFO, logger="casefolio.outbound.housekeeping"):
        await housekeeper(app, days_later=31).run_once()
    assert "purged 0 document(s) and 2 version(s) from the trash" in caplog.messages

    for doc in (alone, shared):
        assert await version_rows(db, doc) == await live_rows(client, matter, doc)
    purged = [a.target_id for a in await audited(db, "version.purged")]
    assert sorted(purged) == sorted([int(doomed[alone]), int(doomed[shared])])
    assert blobs_before - await blob_names(app) == {sha(b"only in a trashed version")}
    assert "version.purged" in await feed_types(db)
    assert [e["id"] for e in await trashed_versions(client, matter)] == [doomed[held]]
    # What stays is intact: each document's current version and bytes.
    for doc, now in ((alone, b"alone now"), (shared, b"shared now"), (held, b"held now")):
        assert await content(client, matter, doc) == now
    # Released, the held one goes at the next purge, bytes included.
    await release(client, matter, hold)
    await housekeeper(app, days_later=32).run_once()
    assert await version_rows(db, held) == await live_rows(client, matter, held)
    assert sha(b"held version") not in await blob_names(app)
    assert await trashed_versions(client, matter) == []


async def test_gc_keeps_the_bytes_of_trashed_versions(
    app: FastAPI, client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await document(client, matter, b"trashed version bytes", b"current bytes")
    trashed = (await versions_of(client, matter, doc))[0]["id"]
    await delete_version(client, matter, doc, trashed)
    before = await blob_names(app)
    state = app.state.casefolio

    report = await gc.collect(
        state.db, state.blobs, grace=timedelta(0), now=utcnow() + timedelta(days=400)
    )

    assert report.blobs == []
    assert await blob_names(app) == before
    assert (await restore(client, matter, trashed)).status_code == 200
    assert await content(client, matter, doc, f"/versions/{trashed}") == b"trashed version bytes"


@pytest.mark.parametrize("dialect", ["v1", "v3"])
async def test_a_held_documents_version_delete_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, db: Database, matter: Matter, dialect: str
) -> None:
    doc = await document(client, matter, b"held one", b"held two")
    before = await versions_of(client, matter, doc)
    second = before[1]["id"]
    hold = await place(client, matter, "document", doc)
    rows = await version_rows(db, doc)
    feed = await feed_types(db)

    if dialect == "v1":
        refused = await delete_version(client, matter, doc, second)
        assert refused.status_code == 409 and f"hold {hold['id']}" in refused.json()["detail"]
    else:
        refused = await client.delete(f"/api/v3/attachments/{second}", headers=matter.admin.headers)
        assert refused.status_code == 409 and refused.json()["_type"] == "Error"

    assert await version_rows(db, doc) == rows
    assert await versions_of(client, matter, doc) == before
    assert await current(client, matter, doc) == before[1]
    assert await trashed_versions(client, matter) == []
    async with db.read() as session:
        types = list(await session.scalars(select(Change.type).order_by(Change.id)))
    assert types == feed  # no version.deleted; the refusal is audit-only
    assert [a.details["versionId"] for a in await audited(db, "hold.refused")] == [int(second)]


async def test_a_v3_attachment_delete_moves_the_version_to_the_trash(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await document(client, matter, b"first", b"second")
    second = (await versions_of(client, matter, doc))[1]["id"]
    h = matter.admin.headers

    assert (await client.delete(f"/api/v3/attachments/{second}", headers=h)).status_code == 204

    assert (await client.get(f"/api/v3/attachments/{second}", headers=h)).status_code == 404
    assert [e["id"] for e in await trashed_versions(client, matter)] == [second]
    assert (await restore(client, matter, second)).status_code == 200
    assert (await client.get(f"/api/v3/attachments/{second}", headers=h)).status_code == 200
    assert (await current(client, matter, doc))["id"] == second


async def test_version_trash_routes_check_access_and_input(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    doc = await document(client, matter, b"a", b"b")
    first, second = (v["id"] for v in await versions_of(client, matter, doc))
    await delete_version(client, matter, doc, first)
    outsider = matter.outsider.headers
    assert (await client.get(matter.url("/trash/versions"), headers=outsider)).status_code == 404
    denied = await client.post(matter.url(f"/trash/versions/{first}/restore"), headers=outsider)
    assert denied.status_code == 404
    reader = await client.get(matter.url("/trash/versions"), headers=matter.reader.headers)
    assert reader.status_code == 403 and "documents.delete" in reader.json()["detail"]
    bad = await client.post(matter.url("/trash/versions/x1/restore"), headers=matter.admin.headers)
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    # Another project's admin cannot restore it through their own project.
    other = await client.post(
        "/api/v1/projects", json={"name": "Other matter"}, headers=operator.headers
    )
    elsewhere = await client.post(
        f"/api/v1/projects/{other.json()['id']}/trash/versions/{first}/restore",
        headers=operator.headers,
    )
    assert elsewhere.status_code == 404
    # Nor does it list it in their own project's trash.
    listed = await client.get(
        f"/api/v1/projects/{other.json()['id']}/trash/versions", headers=operator.headers
    )
    assert listed.status_code == 200 and listed.json() == []
    assert [e["id"] for e in await trashed_versions(client, matter)] == [first]
    assert await version_rows(db, doc) == [(int(first), True), (int(second), False)]


async def test_a_version_restored_after_the_purge_read_the_trash_is_not_purged(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await document(client, matter, b"first, restored in time", b"second")
    first = (await versions_of(client, matter, doc))[0]["id"]
    assert (await delete_version(client, matter, doc, first)).status_code == 204

    async def restore_first() -> None:
        assert (await restore(client, matter, first)).status_code == 200

    blobs = app.state.casefolio.blobs
    racing = cast("Database", RestoredMeanwhile(db, restore_first))
    report = await purge.purge_expired(racing, blobs, now=utcnow() + timedelta(days=31), days=30)

    assert report.versions_purged == []
    assert await version_rows(db, doc) == await live_rows(client, matter, doc)
    assert len(await live_rows(client, matter, doc)) == 2
    assert await content(client, matter, doc, f"/versions/{first}") == b"first, restored in time"
    assert await audited(db, "version.purged") == []


async def test_a_purged_version_is_audited_with_its_number_and_when_it_was_trashed(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    doc = await document(client, matter, b"first", b"second")
    first = (await versions_of(client, matter, doc))[0]["id"]
    assert (await delete_version(client, matter, doc, first)).status_code == 204
    [listed] = await trashed_versions(client, matter)

    await housekeeper(app, days_later=31).run_once()

    [entry] = await audited(db, "version.purged")
    assert entry.target_id == int(first)
    assert entry.details["number"] == 1
    trashed_at = datetime.fromisoformat(entry.details["trashedAt"])
    assert trashed_at == datetime.fromisoformat(listed["trashedAt"])


async def test_purging_a_document_removes_the_bytes_of_its_trashed_versions_too(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    """A document purged with a version that was in the trash apart: the version's row
    goes with the document's, and so do its bytes, not left for `casefolio gc`."""
    doc = await document(client, matter, b"first, trashed apart", b"second, current")
    first = (await versions_of(client, matter, doc))[0]["id"]
    assert (await delete_version(client, matter, doc, first)).status_code == 204
    assert (await delete_document(client, matter, doc)).status_code == 204
    blobs_before = await blob_names(app)

    report = await purge.purge_expired(
        db, app.state.casefolio.blobs, now=utcnow() + timedelta(days=31), days=30
    )

    assert report.purged == [int(doc)]
    removed = blobs_before - await blob_names(app)
    assert len(removed) == 2 and removed == set(report.blobs_removed)
