"""PostgreSQL: who numbers a change (recorder.number_own, sealing.number_pending). A writer
that is its process's only write request numbers its own change at its commit, so that an
idle server's long-polls find it numbered; a writer among other write requests leaves it to
the next reader or worker round, which number every waiting change at once. Either way a
reader of the feed sees it numbered."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select
from starlette.types import Receive, Scope, Send

from casefolio.db.engine import Database
from casefolio.db.models import Change
from casefolio.domain import events
from casefolio.fastpath.inflight import RequestsInFlight
from casefolio.outbound import sealing


async def _newest_seq(db: Database) -> int | None:
    async with db.read() as session:
        change = (await session.scalars(select(Change).order_by(Change.id.desc()))).first()
        assert change is not None
        return change.seq


async def test_a_writer_among_other_writes_leaves_the_numbering_to_readers(
    db: Database, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("SQLite numbers each change as it is written")
    entered, release = asyncio.Event(), asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] in ("/slow-read", "/slow-write"):
            entered.set()
            await release.wait()
        else:
            async with db.write() as session:
                events.emit(session, events.FolderCreated(project_id=1, folder_id=1))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=RequestsInFlight(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/write")).status_code == 204
        assert await _newest_seq(db) is not None  # alone: numbered at its commit

        # A read in progress, as a long-poll waiting for changes: still alone among writers.
        slow = asyncio.create_task(client.get("/slow-read"))
        await entered.wait()
        assert (await client.post("/write")).status_code == 204
        assert await _newest_seq(db) is not None
        release.set()
        assert (await slow).status_code == 204

        entered.clear()
        release.clear()
        slow = asyncio.create_task(client.post("/slow-write"))
        await entered.wait()
        assert (await client.post("/write")).status_code == 204
        assert await _newest_seq(db) is None  # among other writes: left for a reader
        release.set()
        assert (await slow).status_code == 204

    assert await sealing.number_pending(db) == 1
    assert await _newest_seq(db) is not None
