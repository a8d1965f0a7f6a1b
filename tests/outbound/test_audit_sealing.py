"""Sealing: entries are hashed into the chain after their commit, in (xid, id) order, and
only once no transaction that could still write before them is running (the feed's
numbering is in test_feed_numbering.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry
from casefolio.domain import events
from casefolio.outbound import audit, sealing
from casefolio.outbound.worker import Worker
from tests.conftest import PG_ADMIN_URL
from tests.factories import Actor
from tests.outbound.conftest import Matter


async def _chain(db: Database) -> list[AuditEntry]:
    async with db.read() as session:
        return list(
            await session.scalars(select(AuditEntry).order_by(AuditEntry.xid, AuditEntry.id))
        )


async def _seal(db: Database) -> int:
    """Seal; return how many entries were sealed."""
    async with db.write() as session:
        return await sealing.seal(session)


async def _verify(db: Database) -> audit.Verdict:
    async with db.read() as session:
        return await audit.verify(session)


async def _uploads(client: httpx.AsyncClient, matter: Matter, count: int) -> None:
    for n in range(count):
        done = await client.post(
            matter.url(f"/documents?fileName=d{n}.txt"),
            content=f"doc {n}".encode(),
            headers=matter.writer.headers,
        )
        assert done.status_code == 201, done.text


async def test_entries_not_sealed_yet_show_no_hash_and_seal_into_the_same_chain(
    client: httpx.AsyncClient, db: Database, matter: Matter, operator: Actor
) -> None:
    await _uploads(client, matter, 4)
    await _seal(db)
    sealed = await _chain(db)
    assert all(e.hash for e in sealed)
    tail = [e.id for e in sealed[-2:]]
    async with db.write() as session:
        await session.execute(update(AuditEntry).where(AuditEntry.id.in_(tail)).values(hash=None))

    verdict = await _verify(db)
    assert (verdict.first_bad_id, verdict.checked, verdict.unsealed) == (
        None,
        len(sealed) - 2,
        2,
    )
    listed = await client.get(
        "/api/v1/audit", params={"projectId": matter.id}, headers=operator.headers
    )
    assert listed.status_code == 200, listed.text
    hashes = {int(e["id"]): e["hash"] for e in listed.json()}
    assert [hashes[i] for i in tail] == [None, None]

    assert await _seal(db) == 2
    again = await _chain(db)
    assert [(e.id, e.hash) for e in again] == [(e.id, e.hash) for e in sealed]
    assert await _verify(db) == audit.Verdict(len(sealed))


async def test_an_unsealed_entry_before_sealed_ones_is_reported_and_never_sealed(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    await _uploads(client, matter, 3)
    await _seal(db)
    chain = await _chain(db)
    victim = chain[len(chain) // 2]
    async with db.write() as session:
        await session.execute(
            update(AuditEntry).where(AuditEntry.id == victim.id).values(hash=None, client="x")
        )
    verdict = await _verify(db)
    assert verdict.first_bad_id == victim.id
    assert "not sealed" in verdict.reason
    # The sealer only appends after the chain's end: it does not launder the edit.
    assert await _seal(db) == 0
    assert (await _verify(db)).first_bad_id == victim.id


async def test_a_run_sealed_between_two_reads_of_verify_is_checked_not_reported(
    client: httpx.AsyncClient,
    db: Database,
    matter: Matter,
    is_postgres: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Verify reads the chain a chunk at a time while the worker seals: a run it read
    unsealed may be sealed before its next read, and sealed entries then follow it. That is
    the run read again, and checked, not an unsealed entry before sealed ones."""
    if not is_postgres:
        pytest.skip("An SQLite read holds one snapshot: no seal lands between its reads")
    await _uploads(client, matter, 4)
    await _seal(db)
    chain = await _chain(db)
    run = [e.id for e in chain[2:]]
    async with db.write() as session:
        await session.execute(update(AuditEntry).where(AuditEntry.id.in_(run)).values(hash=None))
    monkeypatch.setattr(audit, "_VERIFY_CHUNK", 2)
    read = audit._entries_after
    reads = 0

    async def sealed_after_the_second_read(
        session: AsyncSession, query: Any, position: tuple[int, int], limit: int
    ) -> list[Any]:
        nonlocal reads
        rows = await read(session, query, position, limit)
        reads += 1
        if reads == 2:  # the run's first chunk, read unsealed: the worker seals now
            assert await _seal(db) == len(run)
        return rows

    monkeypatch.setattr(audit, "_entries_after", sealed_after_the_second_read)
    assert len(chain) > 3 * audit._VERIFY_CHUNK
    assert await _verify(db) == audit.Verdict(len(chain))
    assert [(e.id, e.hash) for e in await _chain(db)] == [(e.id, e.hash) for e in chain]


async def test_a_removed_or_edited_sealed_entry_is_reported(
    client: httpx.AsyncClient, db: Database, matter: Matter
) -> None:
    await _uploads(client, matter, 3)
    await _seal(db)
    chain = await _chain(db)
    assert await _verify(db) == audit.Verdict(len(chain))
    gone, after = chain[2], chain[3]
    async with db.write() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.id == gone.id))
    verdict = await _verify(db)
    assert (verdict.first_bad_id, verdict.checked) == (after.id, 2)
    edited = chain[1]
    async with db.write() as session:
        await session.execute(
            update(AuditEntry).where(AuditEntry.id == edited.id).values(details={"x": 1})
        )
    assert (await _verify(db)).first_bad_id == edited.id


def _forged(entry: AuditEntry, column: str) -> Any:
    """Another value for one column of `entry`, as an edit in the database would write."""
    return {
        "at": entry.at + timedelta(seconds=1),
        "actor_kind": "system",
        "actor_user_id": (entry.actor_user_id or 0) + 1,
        "actor_token_id": (entry.actor_token_id or 0) + 1,
        "client": "203.0.113.9",
        "action": "document.deleted",
        "target_type": "folder",
        "target_id": (entry.target_id or 0) + 1,
        "project_id": (entry.project_id or 0) + 1,
        "details": {**entry.details, "title": "forged.txt"},
    }[column]


@pytest.mark.parametrize(
    "column",
    [
        "at",
        "actor_kind",
        "actor_user_id",
        "actor_token_id",
        "client",
        "action",
        "target_type",
        "target_id",
        "project_id",
        "details",
    ],
)
async def test_an_edit_of_any_column_of_a_sealed_entry_is_reported(
    client: httpx.AsyncClient, db: Database, matter: Matter, column: str
) -> None:
    """Every column the API shows is in the hash: a chain leaving one out would let who did
    what, when, to which target and project be rewritten without `audit verify` noticing."""
    await _uploads(client, matter, 3)
    await _seal(db)
    chain = await _chain(db)
    assert await _verify(db) == audit.Verdict(len(chain))
    victim = chain[-2]  # an upload: every column holds a value
    assert None not in (victim.actor_token_id, victim.client, victim.target_id)
    async with db.write() as session:
        await session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == victim.id)
            .values({column: _forged(victim, column)})
        )
    verdict = await _verify(db)
    assert (verdict.first_bad_id, verdict.checked) == (victim.id, len(chain) - 2)
    assert "does not match" in verdict.reason


async def test_an_entry_is_sealed_after_every_older_transaction_ends(
    db: Database, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("SQLite's writers take turns and seal as they write")
    await _seal(db)
    async with db.write() as older:
        # Its transaction id is taken now, before the newer writer's.
        await older.execute(text("SELECT pg_current_xact_id()"))
        async with db.write() as newer:
            events.emit(newer, events.SettingsUpdated(details={"by": "newer"}))
        assert await _seal(db) == 0  # the older transaction could still write before it
        verdict = await _verify(db)
        assert verdict.first_bad_id is None and verdict.unsealed == 1
        events.emit(older, events.SettingsUpdated(details={"by": "older"}))
    assert await _seal(db) == 2
    chain = await _chain(db)
    assert [e.details["by"] for e in chain[-2:]] == ["older", "newer"]
    # The older transaction's entry has the larger id: chain order is (xid, id).
    assert chain[-2].id > chain[-1].id
    verdict = await _verify(db)
    assert verdict == audit.Verdict(len(chain))


async def test_an_entry_after_a_pair_sealed_out_of_id_order_continues_the_chain_at_its_end(
    db: Database, is_postgres: bool
) -> None:
    """The chain's end is its last entry in (xid, id) order, not the one with the largest
    id: a sealer that took the largest id would hash the next entry onto the wrong one."""
    if not is_postgres:
        pytest.skip("SQLite's chain order is its id order")
    await _seal(db)
    async with db.write() as older:
        await older.execute(text("SELECT pg_current_xact_id()"))
        async with db.write() as newer:
            events.emit(newer, events.SettingsUpdated(details={"by": "newer"}))
        events.emit(older, events.SettingsUpdated(details={"by": "older"}))
    assert await _seal(db) == 2
    async with db.write() as later:
        events.emit(later, events.SettingsUpdated(details={"by": "later"}))
    assert await _seal(db) == 1
    chain = await _chain(db)
    assert [e.details["by"] for e in chain[-3:]] == ["older", "newer", "later"]
    assert chain[-3].id > chain[-2].id
    assert await _verify(db) == audit.Verdict(len(chain))


async def test_a_transaction_of_another_database_is_not_waited_for(
    db: Database, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("PostgreSQL's transaction ids are shared by the cluster's databases")
    admin = Settings(database_url=PG_ADMIN_URL).effective_database_url
    elsewhere = create_async_engine(admin)  # the suite's own database, not this test's
    try:
        async with elsewhere.begin() as conn:
            # Its id, taken now, is older than the next writer's here.
            other = (
                await conn.execute(text("SELECT pg_current_xact_id()::text::bigint"))
            ).scalar_one()
            async with db.write() as session:
                events.emit(session, events.SettingsUpdated(details={"by": "here"}))
            assert await _seal(db) == 1
            async with db.read() as session:
                assert await sealing.horizon(session) > other
    finally:
        await elsewhere.dispose()
    assert (await _chain(db))[-1].details == {"by": "here"}


async def test_an_entry_whose_details_json_cannot_hash_stops_neither_sealing_nor_the_worker(
    client: httpx.AsyncClient, db: Database, matter: Matter, settings: Settings, is_postgres: bool
) -> None:
    """PostgreSQL: an entry whose details its json type holds but the chain's canonical
    JSON did not (a lone surrogate's escape, a number past a float: casefolio never writes
    them; a restore or an edit might) raised in every seal: no entry after it was sealed
    again, `audit verify` failed before it could name it, and the worker's rounds failed at
    their seal, so search indexing, which comes after it, stopped for good."""
    if not is_postgres:
        pytest.skip("SQLite seals an entry as it is written: such details never reach a seal")
    async with db.write() as session:
        for details in ('{"name": "\\ud800"}', '{"count": 1e999}'):
            await session.execute(
                text(
                    "INSERT INTO audit_entries (at, actor_kind, action, target_type, details)"
                    " VALUES (now(), 'system', 'odd.entry', 'project', CAST(:d AS json))"
                ),
                {"d": details},
            )
    done = await client.post(
        matter.url("/documents?fileName=found.txt"),
        content=b"a searchable indemnity",
        headers=matter.writer.headers,
    )
    assert done.status_code == 201, done.text
    worker = Worker(settings, db)
    try:
        await worker.run_once()
    finally:
        await worker.close()
    assert all(e.hash for e in await _chain(db))
    verdict = await _verify(db)
    assert (verdict.first_bad_id, verdict.unsealed) == (None, 0)
    assert verdict.checked == len(await _chain(db))
    found = await client.get(
        "/api/v1/search", params={"q": "indemnity"}, headers=matter.writer.headers
    )
    assert [hit["document"]["id"] for hit in found.json()] == [done.json()["id"]]
