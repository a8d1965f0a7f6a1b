"""An upload's blob is durable before its rows commit, on both databases, though on
PostgreSQL its checks and inserts run while the blob is stored (domain/intake.py
`_storing`); a blob that cannot be stored files nothing and leaves staging clean."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select

from casefolio.db.engine import Database
from casefolio.db.models import Document
from casefolio.storage.base import SpooledFile
from tests.api.v1.conftest import Matter, upload


async def _documents(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Document)) or 0)


async def test_the_blob_is_stored_before_the_rows_commit(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    blobs = app.state.casefolio.blobs
    content = b"durable first"
    target = Path(blobs.root) / hashlib.sha256(content).hexdigest()[:2]
    seen: list[tuple[str, float, bool]] = []
    real_put = blobs.put

    async def put(spooled: SpooledFile) -> None:
        await real_put(spooled)
        seen.append(("stored", time.monotonic(), True))

    def committed(conn: object) -> None:
        # What the disk holds when the database is told to commit.
        seen.append(("commit", time.monotonic(), target.exists() and any(target.rglob("*"))))

    def executed(conn: object, cursor: object, statement: str, *_: object) -> None:
        if "INSERT INTO documents" in statement:
            seen.append(("insert", time.monotonic(), True))

    engine = db.engine.sync_engine
    blobs.put = put
    event.listen(engine, "commit", committed)
    event.listen(engine, "before_cursor_execute", executed)
    try:
        filed = await upload(client, matter, content, "durable.pdf")
    finally:
        event.remove(engine, "commit", committed)
        event.remove(engine, "before_cursor_execute", executed)
        del blobs.put
    assert filed.status_code == 201, filed.text
    order = [name for name, _, _ in seen]
    assert order.count("insert") == 1 and "stored" in order, order
    # The commit of the document's rows: the first after its insert.
    filing = order.index("commit", order.index("insert"))
    assert order.index("stored") < filing, order
    assert seen[filing][2], "the blob's directory was not on disk at the commit"


async def test_a_blob_that_cannot_be_stored_files_nothing(
    app: FastAPI, client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    blobs = app.state.casefolio.blobs
    content = b"no room for me"
    # A file where the blob's fan-out directory must go: the store cannot make it.
    blocker = Path(blobs.root) / hashlib.sha256(content).hexdigest()[:2]
    blocker.write_bytes(b"in the way")
    before = await _documents(db)
    try:
        answer = await upload(client, matter, content, "blocked.pdf")
    except OSError:
        pass  # the error reached the test client unhandled: nothing answered 201 either
    else:
        assert answer.status_code >= 500, answer.text
    assert await _documents(db) == before
    assert list(blobs.staging_dir.iterdir()) == []
    blocker.unlink()
    again = await upload(client, matter, content, "unblocked.pdf")
    assert again.status_code == 201, again.text
    assert await _documents(db) == before + 1


@pytest.mark.parametrize("refusal", ["duplicate", "no such folder"])
async def test_a_refused_upload_waits_for_its_blob_and_leaves_staging_clean(
    client: httpx.AsyncClient, app: FastAPI, db: Database, matter: Matter, refusal: str
) -> None:
    first = await upload(client, matter, b"held once", "a.pdf")
    assert first.status_code == 201, first.text
    if refusal == "duplicate":
        refused = await upload(client, matter, b"held once", "b.pdf", rejectDuplicate="true")
        assert refused.status_code == 409, refused.text
    else:
        refused = await client.post(
            matter.url("/documents"),
            files={"file": ("c.pdf", b"in no folder", "application/pdf")},
            data={"metadata": '{"folderId": "999999"}'},
            headers=matter.writer.headers,
        )
        assert refused.status_code in (400, 404, 422), refused.text
    assert await _documents(db) == 1
    assert list(app.state.casefolio.blobs.staging_dir.iterdir()) == []
