"""Search under the access rules, and the indexing around it: failures visible and never
blocking, a dead worker's claims taken again, the worker's own rounds, reindexing."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import Change, OutboundState, VersionText
from casefolio.db.types import utcnow
from casefolio.outbound.worker import Worker
from casefolio.search.index import MAX_ATTEMPTS, STORE_RETRY, Indexer, reindex
from casefolio.storage import S3BlobStore
from tests.clocks import Clock
from tests.factories import Actor
from tests.search import files
from tests.search.conftest import (
    Matter,
    index_all,
    make_matter,
    replace,
    search,
    titles,
    upload,
)
from tests.servers import closed_port


async def test_only_readable_projects_are_searched_counted_or_highlighted(
    client: httpx.AsyncClient, db: Database, operator: Actor, indexer: Indexer
) -> None:
    ours, theirs = await _two_matters_with_a_secret(client, db, operator, indexer)
    assert await titles(client, ours.reader, "secret") == {"ours.txt"}
    assert await titles(client, ours.outsider, "secret") == set()
    assert await titles(client, operator, "secret") == {"ours.txt", "theirs.txt"}
    other = await search(client, ours.reader, "secret", projectId=theirs.id)
    assert other.status_code == 404
    status = await client.get("/api/v1/search/status", headers=ours.reader.headers)
    assert status.json()["done"] == 1  # theirs is not counted
    listed = await client.get(
        theirs.url("/documents"), params={"q": "secret"}, headers=ours.reader.headers
    )
    assert listed.status_code == 404


async def test_a_field_filters_only_for_those_who_can_see_its_project(
    client: httpx.AsyncClient, db: Database, operator: Actor, indexer: Indexer
) -> None:
    ours, theirs = await make_matter(client, db, operator), await make_matter(client, db, operator)
    await upload(client, ours.writer, ours.id, "ours.txt", b"retainer letter")
    doc = await upload(client, theirs.writer, theirs.id, "theirs.txt", b"retainer letter")
    field = await client.post(
        theirs.url("/fields"),
        json={"name": "Custodian", "type": "text"},
        headers=theirs.admin.headers,
    )
    field_id = field.json()["id"]
    set_value = await client.put(
        theirs.url(f"/documents/{doc['id']}/fields/{field_id}"),
        json={"value": "J. Smith"},
        headers=theirs.writer.headers,
    )
    assert set_value.status_code == 200, set_value.text
    await index_all(indexer)
    # Not even whether the field exists: the answer for a field that does not.
    missing = int(field_id) + 1000
    for sent in (field_id, missing):
        found = await search(client, ours.reader, "retainer", fieldId=sent, fieldValue="J. Smith")
        assert found.status_code == 404, found.text
        assert found.json()["detail"] == f"Field {sent} not found."
    # An operator needs no grant on the project.
    by_field = {"fieldId": field_id, "fieldValue": "J. Smith"}
    assert await titles(client, operator, "retainer", **by_field) == {"theirs.txt"}
    assert await titles(client, theirs.reader, "retainer", **by_field) == {"theirs.txt"}


async def test_a_folder_filters_only_for_those_who_can_see_it_and_only_in_its_project(
    client: httpx.AsyncClient, db: Database, operator: Actor, indexer: Indexer
) -> None:
    """A folder the caller cannot see, or of another project than `projectId`, is refused as
    a field is (it answered an empty list, as if the folder were there and empty)."""
    ours, theirs = await make_matter(client, db, operator), await make_matter(client, db, operator)
    folder = await client.post(
        theirs.url("/folders"), json={"name": "Deals"}, headers=theirs.writer.headers
    )
    folder_id = folder.json()["id"]
    doc = await upload(client, theirs.writer, theirs.id, "theirs.txt", b"retainer letter")
    moved = await client.put(
        theirs.url(f"/documents/{doc['id']}/{folder_id}"), headers=theirs.writer.headers
    )
    assert moved.status_code == 200, moved.text
    await index_all(indexer)
    # Not even whether the folder exists: the answer for one that does not.
    for sent in (folder_id, str(int(folder_id) + 1000)):
        found = await search(client, ours.reader, "retainer", folderId=sent)
        assert found.status_code == 404, found.text
        assert found.json()["detail"] == f"Folder {sent} not found."
    # Seen, but not in the project asked for: the folder lists' answer.
    elsewhere = await search(client, operator, "retainer", folderId=folder_id, projectId=ours.id)
    assert elsewhere.status_code == 404, elsewhere.text
    assert elsewhere.json()["detail"] == f"Folder {folder_id} not found in project {ours.id}."
    for who in (operator, theirs.reader):
        assert await titles(client, who, "retainer", folderId=folder_id) == {"theirs.txt"}
        both = {"folderId": folder_id, "projectId": theirs.id}
        assert await titles(client, who, "retainer", **both) == {"theirs.txt"}


async def test_the_status_of_one_project_counts_that_projects_versions_only(
    client: httpx.AsyncClient, db: Database, operator: Actor, indexer: Indexer
) -> None:
    ours, theirs = await make_matter(client, db, operator), await make_matter(client, db, operator)
    await upload(client, ours.writer, ours.id, "ours.txt", b"retainer letter")
    for n in range(2):
        await upload(client, theirs.writer, theirs.id, f"theirs{n}.txt", f"memo {n}".encode())
    await index_all(indexer)
    for project, done in ((ours, 1), (theirs, 2)):
        status = await client.get(
            "/api/v1/search/status", params={"projectId": project.id}, headers=operator.headers
        )
        assert status.status_code == 200, status.text
        assert status.json()["done"] == done
    everything = await client.get("/api/v1/search/status", headers=operator.headers)
    assert everything.json()["done"] == 3


async def test_a_user_removed_from_a_project_stops_finding_its_documents_at_once(
    client: httpx.AsyncClient, matter: Matter, operator: Actor, indexer: Indexer
) -> None:
    await upload(client, matter.writer, matter.id, "memo.txt", b"privileged memorandum")
    await index_all(indexer)
    assert await titles(client, matter.reader, "memorandum") == {"memo.txt"}
    removed = await client.delete(
        matter.url(f"/users/{matter.reader.email}"), headers=operator.headers
    )
    assert removed.status_code in (200, 204), removed.text
    assert await titles(client, matter.reader, "memorandum") == set()


async def test_a_team_grant_lets_its_members_find_and_nobody_else_and_only_while_members(
    client: httpx.AsyncClient, db: Database, operator: Actor, indexer: Indexer
) -> None:
    ours, theirs = await _two_matters_with_a_secret(client, db, operator, indexer)
    team = await client.post("/api/v1/teams", json={"name": "Counsel"}, headers=operator.headers)
    members = f"/api/v1/teams/{team.json()['id']}/users/{theirs.outsider.email}"
    assert (await client.put(members, headers=operator.headers)).status_code == 200
    granted = await client.put(
        theirs.url(f"/teams/{team.json()['id']}"),
        json={"role": "Read Only"},
        headers=theirs.admin.headers,
    )
    assert granted.status_code == 200, granted.text
    assert await titles(client, theirs.outsider, "secret") == {"theirs.txt"}
    assert await titles(client, ours.reader, "secret") == {"ours.txt"}  # in no team
    assert await titles(client, ours.outsider, "secret") == set()
    assert (await client.delete(members, headers=operator.headers)).status_code == 204
    assert await titles(client, theirs.outsider, "secret") == set()


async def test_a_trashed_document_is_found_by_nobody_until_restored(
    client: httpx.AsyncClient, matter: Matter, operator: Actor, indexer: Indexer
) -> None:
    doc = await upload(client, matter.writer, matter.id, "draft.txt", b"settlement draft")
    await replace(client, matter.writer, matter.id, doc["id"], "final.txt", b"settlement final")
    await upload(client, matter.writer, matter.id, "kept.txt", b"settlement schedule")
    await index_all(indexer)
    deleted = await client.delete(
        matter.url(f"/documents/{doc['id']}"), headers=matter.admin.headers
    )
    assert deleted.status_code == 204, deleted.text

    for actor in (matter.reader, operator):  # an operator sees every project, not the trash
        for versions in ("current", "all"):
            found = await titles(client, actor, "settlement", versions=versions)
            assert found == {"kept.txt"}, (actor.email, versions)
        assert await titles(client, actor, "draft", versions="all") == set()
        listed = await client.get(
            matter.url("/documents"), params={"q": "settlement"}, headers=actor.headers
        )
        assert [d["currentVersion"]["fileName"] for d in listed.json()] == ["kept.txt"]
        status = await client.get("/api/v1/search/status", headers=actor.headers)
        assert status.json()["done"] == 1  # the trashed document's two versions are not counted

    restored = await client.post(
        matter.url(f"/trash/{doc['id']}/restore"), headers=matter.admin.headers
    )
    assert restored.status_code == 200, restored.text
    assert await titles(client, matter.reader, "settlement") == {"final.txt", "kept.txt"}
    assert await titles(client, matter.reader, "draft", versions="all") == {"final.txt"}


async def test_failures_are_visible_and_never_block_the_rest(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer
) -> None:
    broken = await upload(
        client, matter.writer, matter.id, "broken.pdf", b"%PDF-1.4 nonsense", "application/pdf"
    )
    await upload(client, matter.writer, matter.id, "scan.png", b"\x89PNG\r\n\x1a\n", "image/png")
    await upload(client, matter.writer, matter.id, "fine.txt", b"readable indemnity text")
    await index_all(indexer)
    assert await titles(client, matter.reader, "indemnity") == {"fine.txt"}
    status = await client.get(
        "/api/v1/search/status", params={"projectId": matter.id}, headers=matter.reader.headers
    )
    assert status.status_code == 200, status.text
    body = status.json()
    assert (body["pending"], body["done"], body["failed"]) == (0, 1, 2)
    reasons = {f["fileName"]: f["reason"] for f in body["failures"]}
    assert "cannot be read" in reasons["broken.pdf"]
    assert "does not read text from image/png" in reasons["scan.png"]
    assert str(broken["id"]) in {f["documentId"] for f in body["failures"]}


async def test_the_status_names_only_the_failures_the_caller_can_read(
    client: httpx.AsyncClient, db: Database, operator: Actor, indexer: Indexer
) -> None:
    ours, theirs = await make_matter(client, db, operator), await make_matter(client, db, operator)
    await upload(client, ours.writer, ours.id, "fine.txt", b"readable text")
    await upload(
        client, theirs.writer, theirs.id, "secret.pdf", b"%PDF-1.4 nonsense", "application/pdf"
    )
    await index_all(indexer)
    status = await client.get("/api/v1/search/status", headers=ours.reader.headers)
    body = status.json()
    assert (body["done"], body["failed"], body["failures"]) == (1, 0, [])
    for actor in (ours.reader, ours.outsider):  # another project's: as if it did not exist
        scoped = await client.get(
            "/api/v1/search/status", params={"projectId": theirs.id}, headers=actor.headers
        )
        assert scoped.status_code == 404, scoped.text
        assert scoped.json()["detail"] == f"Project {theirs.id} not found."
    theirs_status = await client.get("/api/v1/search/status", headers=theirs.reader.headers)
    assert [f["fileName"] for f in theirs_status.json()["failures"]] == ["secret.pdf"]


async def test_size_limit_fails_the_file_with_its_reason(
    client: httpx.AsyncClient, matter: Matter, settings: Settings, db: Database
) -> None:
    small = Indexer(settings.model_copy(update={"search_max_file_bytes": 10}), db)
    await upload(client, matter.writer, matter.id, "big.txt", b"more than ten bytes of text")
    await index_all(small)
    await small.close()
    async with db.read() as session:
        row = await session.scalar(select(VersionText))
    assert row is not None and row.status == "failed"
    assert row.reason == "The file is larger than 10 bytes, the size limit."


async def test_a_dead_workers_claim_is_taken_again(
    client: httpx.AsyncClient, matter: Matter, settings: Settings, db: Database
) -> None:
    await upload(client, matter.writer, matter.id, "a.txt", b"orphaned claim text")
    clock = Clock()
    dead, alive = Indexer(settings, db, clock=clock), Indexer(settings, db, clock=clock)
    await dead.queue()
    assert [job.file_name for job in await dead._claim()] == ["a.txt"]  # then it "dies"
    assert await alive.run_once() == 0  # leased: not taken while the lease runs
    clock.now += dead.lease + timedelta(seconds=1)
    assert await alive.run_once() == 1
    assert await titles(client, matter.reader, "orphaned") == {"a.txt"}
    await dead.close()
    await alive.close()


async def test_a_file_that_kills_its_worker_each_time_fails_after_the_attempts(
    client: httpx.AsyncClient, matter: Matter, settings: Settings, db: Database
) -> None:
    await upload(client, matter.writer, matter.id, "poison.txt", b"poison")
    clock = Clock()
    indexer = Indexer(settings, db, clock=clock)
    await indexer.queue()
    for _ in range(MAX_ATTEMPTS):
        assert len(await indexer._claim()) == 1
        clock.now += indexer.lease + timedelta(seconds=1)
    assert await indexer._claim() == []
    async with db.read() as session:
        row = await session.scalar(select(VersionText))
    assert row is not None and row.status == "failed"
    assert row.reason == f"Reading the text stopped its worker {MAX_ATTEMPTS} times."
    await indexer.close()


async def test_the_webhook_worker_round_indexes_new_uploads(
    client: httpx.AsyncClient, matter: Matter, settings: Settings, db: Database
) -> None:
    worker = Worker(settings, db)
    try:
        docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        await upload(
            client, matter.writer, matter.id, "t.docx", files.docx("Tolling agreement"), docx_type
        )
        assert await titles(client, matter.reader, "tolling") == set()  # not in the request
        assert await worker.run_once() > 0
        assert await titles(client, matter.reader, "tolling") == {"t.docx"}
    finally:
        await worker.close()


async def test_reindex_queues_everything_again_and_keeps_search_working(
    client: httpx.AsyncClient, matter: Matter, db: Database, indexer: Indexer
) -> None:
    await upload(client, matter.writer, matter.id, "r.txt", b"rebuild me")
    await index_all(indexer)
    async with db.write() as session:
        assert await reindex(session, project_id=matter.id) == 1
    assert await titles(client, matter.reader, "rebuild") == {"r.txt"}  # old text meanwhile
    assert await index_all(indexer) == 1
    async with db.write() as session:
        assert await reindex(session, project_id=matter.id + 1000) == 0
    assert await titles(client, matter.reader, "rebuild") == {"r.txt"}


async def test_postgresql_keeps_the_tsvector_in_the_row(
    client: httpx.AsyncClient, matter: Matter, indexer: Indexer, db: Database
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the tsvector's storage is PostgreSQL's (SQLite: FTS5 tables)")
    words = " ".join(f"w{n}x{n * 7919 % 10007}" for n in range(600))  # a tsvector of ~9 KB
    await upload(client, matter.writer, matter.id, "long.txt", f"{words} indemnity".encode())
    await index_all(indexer)
    assert await titles(client, matter.reader, "indemnity") == {"long.txt"}
    async with db.read() as session:
        storage = await session.scalar(
            text(
                "SELECT attstorage::text FROM pg_attribute "
                "WHERE attrelid = 'version_texts'::regclass AND attname = 'tsv'"
            )
        )
    assert storage == "m"  # MAIN: in the row, out of it only when it cannot fit a page


async def _indexing_state(db: Database) -> str:
    """What the indexer had to go on, for a failure's message."""
    async with db.read() as session:
        texts = [
            (t.version_id, t.status, t.attempts) for t in await session.scalars(select(VersionText))
        ]
        changes = [(c.seq, c.type) for c in await session.scalars(select(Change))]
        states = [(o.name, o.value) for o in await session.scalars(select(OutboundState))]
    return f"texts {texts}, changes {changes}, states {states}"


async def test_a_blob_store_that_cannot_be_reached_leaves_files_pending_not_failed(
    client: httpx.AsyncClient,
    matter: Matter,
    settings: Settings,
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await upload(client, matter.writer, matter.id, "fine.txt", b"readable indemnity text")
    now = [utcnow()]

    def tries() -> int:
        return sum("blob store cannot be reached" in r.getMessage() for r in caplog.records)

    # An S3 store at an address nobody listens on: an outage of the scaled-out shape.
    with closed_port() as port:
        unreachable = S3BlobStore(
            bucket="casefolio",
            prefix="outage",
            staging_dir=settings.data_dir / "staging",
            endpoint_url=f"http://127.0.0.1:{port}",
            access_key_id="testing",
            secret_access_key="testing",
        )
        during = Indexer(settings, db, clock=lambda: now[0], blobs=unreachable)
        try:
            # More rounds than the attempts that mark a file failed, leases expired between.
            for attempt in range(1, MAX_ATTEMPTS + 2):
                await during.run_once()
                assert tries() == attempt, await _indexing_state(db)
                await during.run_once()  # paused: the store is not tried again so soon
                assert tries() == attempt
                now[0] += max(STORE_RETRY, during.lease)
        finally:
            await during.close()

    status = await client.get(
        "/api/v1/search/status", params={"projectId": matter.id}, headers=matter.reader.headers
    )
    assert (status.json()["pending"], status.json()["failed"]) == (1, 0)
    # With the store back (the suite's local one), the file is read.
    after = Indexer(settings, db, clock=lambda: now[0])
    try:
        await index_all(after)
    finally:
        await after.close()
    assert await titles(client, matter.reader, "indemnity") == {"fine.txt"}


async def _two_matters_with_a_secret(
    client: httpx.AsyncClient, db: Database, operator: Actor, indexer: Indexer
) -> tuple[Matter, Matter]:
    """Two projects, each with one indexed file holding the word "secret"."""
    ours, theirs = await make_matter(client, db, operator), await make_matter(client, db, operator)
    await upload(client, ours.writer, ours.id, "ours.txt", b"the shared secret word")
    await upload(client, theirs.writer, theirs.id, "theirs.txt", b"the shared secret word too")
    await index_all(indexer)
    return ours, theirs
