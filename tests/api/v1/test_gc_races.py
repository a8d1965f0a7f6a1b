"""gc (and the trash's purge) and uploads of the same bytes take turns (domain/blob_locks.py):
a version is never filed without its bytes, whichever comes first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from casefolio.db.engine import Database
from casefolio.db.models import DocumentVersion
from casefolio.domain import blob_locks, gc
from casefolio.domain.blob_locks import Removal
from casefolio.storage import BlobStore
from casefolio.storage.base import SpooledFile
from tests.api.v1.conftest import Matter, upload
from tests.races import until_a_backend_waits_on_a_lock

#: Larger than an upload held in memory: stored before its transaction, on both databases.
CONTENT = b"exhibit 7 " * 10_000
LONG_AGO = datetime.now(UTC) - timedelta(days=2)


class _LookedBeforeThePut:
    """The store as gc saw it when it listed and looked at a blob: before an upload put the
    same bytes again, so old (its HEAD answered just before the put)."""

    def __init__(self, store: BlobStore, sha256: str) -> None:
        self._store = store
        self._sha256 = sha256

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def list(self) -> AsyncIterator[tuple[str, datetime]]:
        yield self._sha256, LONG_AGO

    async def modified(self, sha256: str) -> datetime | None:
        return LONG_AGO if await self._store.exists(sha256) else None


class _GcRightAfterThePut:
    """The app's store, where a gc that looked at the blob before the upload's put deletes
    it right after: the moment between an upload's put and its commit."""

    def __init__(self, store: BlobStore, db: Database) -> None:
        self._store = store
        self._db = db
        self.reports: list[gc.GcReport] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def put(self, spooled: SpooledFile) -> None:
        sha256 = spooled.sha256
        await self._store.put(spooled)
        seen = _LookedBeforeThePut(self._store, sha256)
        self.reports.append(await gc.collect(self._db, seen, grace=timedelta(hours=1)))  # type: ignore[arg-type]


async def test_an_upload_whose_bytes_gc_removed_after_the_put_files_nothing(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    state = app.state.casefolio
    real = state.blobs
    state.blobs = racing = _GcRightAfterThePut(real, db)
    try:
        answer = await upload(client, matter, CONTENT, name="exhibit-7.txt")
    finally:
        state.blobs = real

    assert [len(report.blobs) for report in racing.reports] == [1]  # gc did remove them
    assert answer.status_code == 409, answer.text
    assert "removed by a clean-up" in answer.json()["detail"]
    listed = await client.get(matter.url("/documents"), headers=matter.admin.headers)
    assert listed.json() == []
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(DocumentVersion)) == 0
    again = await upload(client, matter, CONTENT, name="exhibit-7.txt")
    assert again.status_code == 201, again.text
    content = await client.get(
        matter.url(f"/documents/{again.json()['id']}/content"), headers=matter.admin.headers
    )
    assert content.status_code == 200 and content.content == CONTENT


async def _put(store: BlobStore, data: bytes) -> str:
    from tests.storage.test_blob_stores import put

    return await put(store, data)


async def test_gc_waits_for_a_filing_that_holds_the_blob_and_then_keeps_it(
    app: FastAPI, db: Database, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("SQLite's writers take turns: gc's write waits for the filing's commit")
    blobs: BlobStore = app.state.casefolio.blobs
    sha = await _put(blobs, CONTENT)
    filing = db.writer()
    await filing.begin()
    try:
        await blob_locks.confirm_stored(filing, blobs, [sha])
        await filing.execute(
            text(
                "INSERT INTO document_versions (document_id, number, file_name, content_type,"
                " size, sha256, description, created_at) VALUES (NULL, 0, 'a.txt',"
                " 'text/plain', :size, :sha, '', CURRENT_TIMESTAMP)"
            ),
            {"size": len(CONTENT), "sha": sha},
        )
        seen = _LookedBeforeThePut(blobs, sha)
        removing = asyncio.ensure_future(
            blob_locks.remove_unless_used(db, seen, sha, stored_before=datetime.now(UTC))  # type: ignore[arg-type]
        )
        await until_a_backend_waits_on_a_lock(db)
        assert not removing.done()
        await filing.commit()
    finally:
        await filing.close()

    assert await removing is Removal.REFERENCED
    assert await blobs.exists(sha)
