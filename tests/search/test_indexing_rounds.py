"""The indexer's rounds when one file's outcome cannot be stored, and when its worker stops
mid-batch: the other files' work is neither lost nor counted against them."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import select

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import VersionText
from casefolio.search.index import UNSTORABLE, Indexer, Outcome
from casefolio.storage import BlobStore, open_blob_store
from tests.clocks import Clock
from tests.refusals import refusing
from tests.search.conftest import Matter, index_all, titles, upload


async def _texts(db: Database) -> dict[int, VersionText]:
    async with db.read() as session:
        return {t.version_id: t for t in await session.scalars(select(VersionText))}


async def test_a_text_the_database_refuses_fails_its_file_alone(
    client: httpx.AsyncClient, matter: Matter, db: Database, settings: Settings
) -> None:
    """A text the database refuses for a reason nobody foresaw (a trigger stands in for
    one) failed the store of the whole batch: every file of it was read again at the next
    claim, and after three the batch's files all failed as having stopped their worker."""
    clock = Clock()
    indexer = Indexer(settings, db, clock=clock)
    try:
        async with refusing(db, "version_texts", "NEW.text LIKE '%poison%'", "UPDATE"):
            poison = await upload(client, matter.writer, matter.id, "p.txt", b"a poison pill")
            await upload(client, matter.writer, matter.id, "fine.txt", b"readable indemnity text")
            await index_all(indexer)
            clock.now += indexer.lease * 2  # any claim left behind would be taken again
            assert await index_all(indexer) == 0
    finally:
        await indexer.close()
    assert await titles(client, matter.reader, "indemnity") == {"fine.txt"}
    texts = await _texts(db)
    refused = texts[int(poison["currentVersion"]["id"])]
    assert (refused.status, refused.reason, refused.text) == ("failed", UNSTORABLE, None)
    assert sorted(t.status for t in texts.values()) == ["done", "failed"]


async def test_postgresql_a_text_too_many_words_for_a_tsvector_keeps_its_beginning(
    client: httpx.AsyncClient, matter: Matter, db: Database, indexer: Indexer
) -> None:
    """PostgreSQL: a tsvector holds at most 1 MB of distinct words. Within the default
    500,000 characters, distinct words of three 3-byte letters (Hangul) make about 2 MB,
    and the generated column refused the whole batch's store; then the file failed as a
    whole, none of its words searchable. Now its text is cut until it fits: the first words
    are found, the last are not, and the other file is unharmed."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's FTS5 has no such limit")
    hangul = [chr(0xAC00 + n) for n in range(60)]
    triples = [a + b + c for a in hangul for b in hangul for c in hangul[:30]]
    words = " ".join(triples)
    big = await upload(client, matter.writer, matter.id, "words.txt", words.encode())
    await upload(client, matter.writer, matter.id, "fine.txt", b"readable indemnity text")
    await index_all(indexer)
    assert await titles(client, matter.reader, "indemnity") == {"fine.txt"}
    assert await titles(client, matter.reader, triples[0]) == {"words.txt"}
    assert await titles(client, matter.reader, triples[-1]) == set()
    stored = (await _texts(db))[int(big["currentVersion"]["id"])]
    assert stored.status == "done" and stored.reason is None and stored.text is not None
    assert words.startswith(stored.text) and 1000 < len(stored.text) < len(words)
    assert not stored.text.endswith(" ") and words[len(stored.text)] == " "  # whole words
    assert sorted(t.status for t in (await _texts(db)).values()) == ["done", "done"]


async def test_a_reason_quoting_a_nul_or_running_long_is_stored_cleaned_and_cut(
    client: httpx.AsyncClient, matter: Matter, db: Database, settings: Settings
) -> None:
    """A reason quotes the reader's message, which may quote the file: PostgreSQL refused
    one with a NUL, or longer than its column, and with it the whole batch's outcomes."""
    await upload(client, matter.writer, matter.id, "odd.pdf", b"%PDF-1.4 odd", "application/pdf")
    indexer = Indexer(settings, db)
    try:
        await indexer.queue()
        [job] = await indexer._claim()
        said = "The pdf file cannot be read: name /A\x00B " + "x" * 600
        await indexer._store([(job, Outcome(None, said))], [])
    finally:
        await indexer.close()
    row = (await _texts(db))[job.version_id]
    assert row.status == "failed" and row.reason is not None
    assert row.reason.startswith("The pdf file cannot be read: name /A\ufffdB x")
    assert len(row.reason) == 500


class _Hanging:
    """The suite's blob store, read as a remote one, whose reads of one blob never end."""

    def __init__(self, settings: Settings, sha256: str) -> None:
        self.inner: BlobStore = open_blob_store(settings)
        self.sha256 = sha256
        self.hanging = anyio.Event()

    def local_path(self, sha256: str) -> Path | None:
        return None

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        if sha256 == self.sha256:
            self.hanging.set()
            await anyio.sleep_forever()
        async for chunk in self.inner.read(sha256, start, end):
            yield chunk

    async def close(self) -> None:
        await self.inner.close()


async def test_a_worker_stopped_mid_batch_keeps_what_it_read_and_lets_go_of_the_rest(
    client: httpx.AsyncClient, matter: Matter, db: Database, settings: Settings
) -> None:
    """A worker stopped (a server shutting down, SIGTERM) while it read a batch dropped
    what it had read, and left the batch claimed until its lease ran out with an attempt
    counted against every file: stopped three times, they all failed as having stopped
    their worker."""
    await upload(client, matter.writer, matter.id, "first.txt", b"readable indemnity text")
    stuck = await upload(client, matter.writer, matter.id, "stuck.txt", b"a hanging read")
    last = await upload(client, matter.writer, matter.id, "last.txt", b"unread warranty text")
    clock = Clock()
    blobs = _Hanging(settings, stuck["currentVersion"]["sha256"])
    stopping = Indexer(settings, db, clock=clock, blobs=blobs)  # type: ignore[arg-type]
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(stopping.run_once)
            await blobs.hanging.wait()
            tasks.cancel_scope.cancel()
    finally:
        await stopping.close()
    assert await titles(client, matter.reader, "indemnity") == {"first.txt"}
    texts = await _texts(db)
    for document in (stuck, last):
        row = texts[int(document["currentVersion"]["id"])]
        assert (row.status, row.attempts, row.claimed_until) == ("pending", 0, None)
    # The next worker takes them at once, not after the lease.
    after = Indexer(settings, db, clock=clock)
    try:
        assert await index_all(after) == 2
    finally:
        await after.close()
    assert await titles(client, matter.reader, "warranty") == {"last.txt"}
