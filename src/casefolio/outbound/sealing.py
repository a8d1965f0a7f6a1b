"""Sealing: hash audit entries into the chain once no entry can come before them.

On PostgreSQL writers do not take turns (recorder.py): an entry is written unsealed, with
the id of its transaction (`xid`). The chain's order is (xid, id). Every transaction of
this database whose id is below the horizon (`horizon`) has finished, and any later writer
gets a larger id, so the entries below it are final: the sealer hashes them in (xid, id)
order after the last sealed entry, one sealer at a time (an advisory lock that only
sealers take). The worker seals every round; `audit verify` and `audit export` seal first.
On SQLite the recorder seals as it writes, so nothing waits here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, select, text, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry
from casefolio.outbound.chain import GENESIS, entry_document, next_hash

#: pg_advisory_xact_lock key: one sealer at a time (writers never take it).
CHAIN_LOCK = 0x6361_7365_666F_6C69  # "casefoli"
SEAL_BATCH = 1000
#: The transactions pg_stat_activity shows in other databases of the cluster: they cannot
#: write here, so the horizon need not wait for them. Read before the snapshot the horizon
#: comes from, so that every transaction finished by then is below the horizon unless one
#: of this database's, older, is still running (a transaction it does not show is waited
#: for: the safe side).
_OTHER_DATABASES = text(
    "SELECT COALESCE(array_agg(backend_xid::text::bigint), '{}') FROM pg_stat_activity"
    " WHERE datname IS DISTINCT FROM current_database() AND backend_xid IS NOT NULL"
)
#: The oldest transaction in progress in the statement's snapshot, those of `:others`
#: (32-bit ids) left out, or the next id if there is none.
_HORIZON = (
    "(SELECT COALESCE(MIN(x::text::bigint), MIN(pg_snapshot_xmax(s)::text::bigint))"
    " FROM pg_current_snapshot() AS s LEFT JOIN LATERAL pg_snapshot_xip(s) AS x"
    " ON NOT x::text::bigint % 4294967296 = ANY(CAST(:others AS bigint[])))"
)
_SELECT_HORIZON = text(f"SELECT {_HORIZON}")
#: Before every entry: (xid, id).
BEFORE_ALL = (-1, 0)

_TABLE: Table = AuditEntry.__table__  # type: ignore[assignment]
_KEY = tuple_(_TABLE.c.xid, _TABLE.c.id)
_LAST_SEALED = (
    select(_TABLE.c.xid, _TABLE.c.id, _TABLE.c.hash)
    .where(_TABLE.c.hash.is_not(None))
    .order_by(_TABLE.c.xid.desc(), _TABLE.c.id.desc())
    .limit(1)
)
_SEAL = _TABLE.update().where(_TABLE.c.id == bindparam("key")).values(hash=bindparam("sealed"))
#: PostgreSQL: a batch in one statement.
_SEAL_PG = text(
    "UPDATE audit_entries SET hash = v.hash"
    " FROM unnest(CAST(:ids AS bigint[]), CAST(:hashes AS text[])) AS v(id, hash)"
    " WHERE audit_entries.id = v.id"
)


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _others(session: AsyncSession) -> list[int]:
    return list(await session.scalar(_OTHER_DATABASES) or [])


async def horizon(session: AsyncSession) -> int:
    """PostgreSQL: the transaction id below which every transaction that can write here
    has finished (and any later writer gets a larger one): the rows below it are final."""
    others = await _others(session)
    return int(await session.scalar(_SELECT_HORIZON, {"others": others}) or 0)


async def _final(session: AsyncSession) -> ColumnElement[bool]:
    """Entries below the horizon of the snapshot of the statement that uses this."""
    if not _postgres(session):
        return true()
    below = text(f"audit_entries.xid < {_HORIZON}").bindparams(others=await _others(session))
    return below  # type: ignore[return-value]


def columns(row: Any) -> dict[str, Any]:
    """What the hash covers, from a row of audit_entries."""
    return {
        "id": row.id,
        "at": row.at,
        "actor_kind": row.actor_kind,
        "actor_user_id": row.actor_user_id,
        "actor_token_id": row.actor_token_id,
        "client": row.client,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "project_id": row.project_id,
        "details": row.details,
    }


async def last_sealed(session: AsyncSession) -> tuple[tuple[int, int], str]:
    """The chain position (xid, id) and hash of the newest sealed entry."""
    last = (await session.execute(_LAST_SEALED)).first()
    return ((last.xid, last.id), last.hash) if last else (BEFORE_ALL, GENESIS)


async def sealable(session: AsyncSession) -> bool:
    """Whether any entry can be sealed now (a read: the partial index of unsealed ones)."""
    found = await session.execute(
        select(_TABLE.c.id).where(_TABLE.c.hash.is_(None), await _final(session)).limit(1)
    )
    return found.first() is not None


async def seal(session: AsyncSession, *, wait: bool = True) -> int:
    """In a write transaction: seal every entry that can be; return how many. Without
    `wait`, give up at once (0) if another sealer is at work."""
    postgres = _postgres(session)
    if postgres:
        if wait:
            await session.execute(text(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})"))
        elif not await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({CHAIN_LOCK})")):
            return 0
    position, previous = await last_sealed(session)
    sealed = 0
    while True:
        # One statement: its rows and the horizon come from the same snapshot.
        rows = (
            await session.execute(
                select(_TABLE)
                .where(_TABLE.c.hash.is_(None), tuple_(*position) < _KEY, await _final(session))
                .order_by(_TABLE.c.xid, _TABLE.c.id)
                .limit(SEAL_BATCH)
            )
        ).all()
        if not rows:
            return sealed
        ids, hashes = [], []
        for row in rows:
            previous = next_hash(previous, entry_document(**columns(row)))
            ids.append(row.id)
            hashes.append(previous)
        if postgres:
            await session.execute(_SEAL_PG, {"ids": ids, "hashes": hashes})
        else:
            await (await session.connection()).execute(
                _SEAL, [{"key": i, "sealed": h} for i, h in zip(ids, hashes, strict=True)]
            )
        position = (rows[-1].xid, rows[-1].id)
        sealed += len(rows)


async def seal_pending(db: Database, *, wait: bool = False) -> int:
    """Seal what can be, if anything (a read first: most rounds have nothing to seal)."""
    async with db.read() as session:
        if not await sealable(session):
            return 0
    async with db.write() as session:
        return await seal(session, wait=wait)
