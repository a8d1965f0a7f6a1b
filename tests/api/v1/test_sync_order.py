"""A sync client that polls with the newest updatedAt it saw misses nothing, also while
writers overlap (PostgreSQL): a change stamped before one already shown must not become
visible after it (db/stamps.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from casefolio.db.engine import Database
from casefolio.domain import documents
from casefolio.domain.principal import Principal
from casefolio.storage import BlobStore
from casefolio.storage.base import SpooledFile
from tests.api.v1.conftest import Matter, upload


async def poll(client: httpx.AsyncClient, matter: Matter, after: str) -> list[dict[str, str]]:
    listed = await client.get(
        matter.url("/documents"), params={"afterDate": after}, headers=matter.reader.headers
    )
    assert listed.status_code == 200, listed.text
    return listed.json()  # type: ignore[no-any-return]


async def test_a_change_committed_after_a_later_one_is_still_seen_by_the_next_poll(
    client: httpx.AsyncClient, db: Database, matter: Matter, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: a write waits until the open one commits")
    first = (await upload(client, matter, b"first", "first.pdf")).json()
    slow = (await upload(client, matter, b"slow", "slow.pdf")).json()
    writer = Principal(matter.writer.user_id, matter.writer.email, "Writer", is_operator=False)
    async with db.write() as session:
        # A rename whose transaction stays open while another upload commits.
        await documents.update_details(
            session, who=writer, document_id=int(slow["id"]), title="renamed slowly"
        )
        later = await upload(client, matter, b"later", "later.pdf")
        assert later.status_code == 201, later.text
        during = await poll(client, matter, first["updatedAt"])
    after = max([first["updatedAt"], *(d["updatedAt"] for d in during)])
    then = await poll(client, matter, after)
    seen = {d["id"]: d["title"] for d in during + then}
    assert seen.get(slow["id"]) == "renamed slowly", (during, then)
    assert later.json()["id"] in seen
    # Once nothing is being written, the same poll shows both at once.
    everything = await poll(client, matter, first["updatedAt"])
    assert {slow["id"], later.json()["id"]} <= {d["id"] for d in everything}


async def test_overlapping_uploads_polled_meanwhile_are_all_seen(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """Uploads running at once while a client polls as a sync does: every document is seen."""
    start = (await upload(client, matter, b"start", "start.pdf")).json()["updatedAt"]
    uploads = [
        asyncio.ensure_future(upload(client, matter, f"doc {i}".encode(), f"doc-{i}.pdf"))
        for i in range(24)
    ]
    seen: set[str] = set()
    after = start
    for done in asyncio.as_completed(uploads):  # a poll each time one is answered
        assert (await done).status_code == 201
        listed = await poll(client, matter, after)
        seen |= {d["id"] for d in listed}
        after = max([after, *(d["updatedAt"] for d in listed)])
    filed = {(await u).json()["id"] for u in uploads}
    seen |= {d["id"] for d in await poll(client, matter, after)}
    assert filed <= seen, sorted(filed - seen)


class _HeldPut:
    """The app's store, whose next put waits until the test lets it go on: a large file on
    its way to the bucket."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self.started = asyncio.Event()
        self.go_on = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def put(self, spooled: SpooledFile) -> None:
        self.started.set()
        await self.go_on.wait()
        await self._store.put(spooled)


async def test_a_large_upload_on_its_way_to_the_store_holds_back_no_listing(
    app: FastAPI, client: httpx.AsyncClient, matter: Matter, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("SQLite stores every upload's bytes before its transaction begins")
    doc = (await upload(client, matter, b"listed", "listed.pdf")).json()
    state = app.state.casefolio
    real = state.blobs
    state.blobs = held = _HeldPut(real)
    try:
        # Larger than an upload held in memory (64 KiB).
        large = asyncio.ensure_future(upload(client, matter, b"x" * 200_000, "large.pdf"))
        await held.started.wait()
        h = matter.admin.headers
        renamed = await client.patch(
            matter.url(f"/documents/{doc['id']}"), json={"title": "Renamed meanwhile"}, headers=h
        )
        assert renamed.status_code == 200, renamed.text
        listed = await client.get(matter.url("/documents"), headers=h)
        held.go_on.set()
        assert (await large).status_code == 201
    finally:
        held.go_on.set()
        state.blobs = real

    assert [d["title"] for d in listed.json()] == ["Renamed meanwhile"]
