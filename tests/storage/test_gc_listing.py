"""Garbage collection against every blob store: a blob stored again after gc listed it stays.

gc lists blobs, asks the database which are referenced, then deletes the old orphans; the
listing can be minutes old by then. An upload of the same bytes meanwhile refreshes the
blob's modification time and files a version that points at it, so gc must look again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from casefolio.db.engine import Database
from casefolio.domain import gc
from casefolio.storage import BlobStore
from tests.storage.test_blob_stores import put


class _ListedEarlier:
    """The store, as gc sees it: with the listing it took before the blob was put again."""

    def __init__(self, store: BlobStore, listing: list[tuple[str, datetime]]) -> None:
        self._store = store
        self._listing = listing

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def list(self) -> AsyncIterator[tuple[str, datetime]]:
        for item in self._listing:
            yield item


async def test_gc_keeps_a_blob_stored_again_after_it_was_listed(
    blob_store: BlobStore, db: Database
) -> None:
    sha = await put(blob_store, b"deleted yesterday, uploaded again today")
    long_ago = datetime.now(UTC) - timedelta(days=2)
    seen_by_gc = _ListedEarlier(blob_store, [(sha, long_ago)])
    report = await gc.collect(db, seen_by_gc, grace=timedelta(hours=1))  # type: ignore[arg-type]
    assert report.blobs == [] and report.kept_young == 1
    assert await blob_store.exists(sha)


async def test_gc_deletes_an_orphan_that_is_still_old(blob_store: BlobStore, db: Database) -> None:
    sha = await put(blob_store, b"an orphan")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    report = await gc.collect(db, blob_store, grace=timedelta(hours=1), now=tomorrow)
    assert [removed.name for removed in report.blobs] == [sha]
    assert not await blob_store.exists(sha)
