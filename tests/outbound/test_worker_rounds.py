"""The worker's loop: a round that fails is followed by another, later and later while they
keep failing, up to a maximum (test_worker_processes.py: the worker then delivers again),
and loses nothing it had claimed."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import Change
from casefolio.outbound.worker import ROUND_RETRY_MAX_SECONDS, ROUND_RETRY_SECONDS, Worker
from tests.clocks import Clock
from tests.factories import Actor
from tests.outbound.conftest import Matter
from tests.outbound.receiver import receiver
from tests.refusals import refusing


class _Stop(BaseException):
    """Ends the worker's loop from its pause (as a cancellation would)."""


async def test_failed_rounds_wait_longer_each_time_up_to_the_maximum(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database the worker cannot open: every round fails, as while a server is down.
    gone = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'no-such-folder' / 'casefolio.db'}",
    )
    db = Database.open(gone)
    waits: list[float] = []

    async def pause(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 9:
            raise _Stop

    worker = Worker(gone, db, pause=pause)
    try:
        # run() holds its sends in a task group, which hands the exception on in a group.
        with pytest.raises(BaseExceptionGroup) as stopped:
            await worker.run()
        assert stopped.group_contains(_Stop)
    finally:
        await worker.close()
        await db.close()

    doubling = [ROUND_RETRY_SECONDS * 2**n for n in range(9)]
    assert waits == [min(w, ROUND_RETRY_MAX_SECONDS) for w in doubling]
    assert waits[-1] == ROUND_RETRY_MAX_SECONDS
    failed = [r for r in caplog.records if "a worker round failed" in r.getMessage()]
    assert len(failed) == 9
    assert "unable to open database file" in failed[0].getMessage()


async def test_a_round_that_fails_to_claim_still_sends_what_its_fan_out_claimed(
    client: httpx.AsyncClient,
    settings: Settings,
    matter: Matter,
    operator: Actor,
    is_postgres: bool,
) -> None:
    """The fan-out inserts new deliveries already claimed, for the same round to send; the
    round's claim of due ones then fails (here: another process holds SQLite's write lock
    past the worker's wait). The next round sends them, not the round after their leases
    ran out."""
    if is_postgres:
        pytest.skip("SQLite's write lock, held by another connection between two steps")
    hasty = settings.model_copy(update={"sqlite_lock_wait_seconds": 0.2})
    db = Database.open(hasty)
    path = make_url(settings.effective_database_url).database
    assert path
    holder = sqlite3.connect(path, isolation_level=None)
    clock = Clock()

    class LockedAfterFirstFanOut(Worker):
        async def fan_out(self) -> int:
            done = await super().fan_out()
            if done:  # another process's write, at this moment
                holder.execute("BEGIN IMMEDIATE")
            return done

    with receiver() as hooked:
        made = await client.post(
            "/api/v1/webhooks",
            json={"url": hooked.url, "events": ["document.created"]},
            headers=operator.headers,
        )
        hook = made.json()["id"]
        # Due in the outbox, so that the round's claim of due deliveries needs its write.
        queued = await client.post(f"/api/v1/webhooks/{hook}/test", headers=operator.headers)
        assert queued.status_code == 202
        uploaded = await client.post(
            matter.url("/documents?fileName=a.txt"), content=b"x", headers=matter.writer.headers
        )
        assert uploaded.status_code == 201
        clock.catch_up()  # the test delivery was queued at the real "now"
        worker = LockedAfterFirstFanOut(hasty, db, clock=clock)
        try:
            with pytest.raises(OperationalError, match="locked"):
                await worker.run_once()
            holder.execute("ROLLBACK")
            assert hooked.received == []
            # The next round, leases still running: the fan-out's delivery goes out too.
            await worker.run_once()
        finally:
            if holder.in_transaction:
                holder.execute("ROLLBACK")
            holder.close()
            await worker.close()
            await db.close()
        types = sorted(json.loads(r.body)["type"] for r in hooked.received)
    assert types == ["document.created", "webhook.test"]


async def test_a_seal_that_fails_every_round_holds_back_neither_indexing_nor_trimming(
    client: httpx.AsyncClient, db: Database, matter: Matter, settings: Settings, is_postgres: bool
) -> None:
    """PostgreSQL: the round's steps after the deliveries ran in turn, so a seal failing
    every round (a trigger stands in for a refusal nobody foresaw) meant that search
    indexing and the feed's trim, which came after it, never ran again."""
    if not is_postgres:
        pytest.skip("SQLite seals an entry as it is written: its rounds have no seal to fail")
    clock = Clock()
    worker = Worker(settings, db, clock=clock)
    try:
        async with refusing(db, "audit_entries", "TRUE", "UPDATE OF hash"):
            async with db.write() as session:  # a change past the feed's retention, numbered
                await session.execute(
                    insert(Change).values(at=clock.now - timedelta(days=400), type="old.change")
                )
            done = await client.post(
                matter.url("/documents?fileName=found.txt"),
                content=b"a searchable indemnity",
                headers=matter.writer.headers,
            )
            assert done.status_code == 201, done.text
            with pytest.raises(DBAPIError, match="this database refuses it"):
                await worker.run_once()
    finally:
        await worker.close()
    found = await client.get(
        "/api/v1/search", params={"q": "indemnity"}, headers=matter.writer.headers
    )
    assert [hit["document"]["id"] for hit in found.json()] == [done.json()["id"]]
    async with db.read() as session:
        left = list(await session.scalars(select(Change.type).order_by(Change.id)))
    assert left == ["document.created"]  # the old one trimmed
