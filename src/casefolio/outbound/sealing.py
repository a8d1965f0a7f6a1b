"""Sealing: number committed changes for the feed, and hash audit entries into the chain
once no entry can come before them.

On PostgreSQL writers do not take turns (recorder.py): a change is written without its feed
number (`seq` is None) and an entry unsealed, both with the id of their transaction (`xid`).
Afterwards, under advisory locks that only these take, each held through its commit:

- the numberer (`number_pending`) gives every change it sees committed the next numbers after the
  newest, in (xid, id) order. A change is numbered only once it has committed, and
  numbers are handed out in increasing order by numberers that take turns, so the numbers
  any reader sees are all those up to the newest it sees: a reader that has read up to n
  never misses a change, and a change that commits later (however early its transaction
  began) gets a larger number. No horizon: a long transaction holds up no change but its
  own. Numbering cannot wait: the feed's readers number before they read, and the worker
  before it fans out (each woken by a commit's NOTIFY). A writer that is the only write
  request of its process (long-polls waiting are reads) numbers too, at the end of its
  transaction, if it gets the lock without waiting (recorder.number_own): then its change
  and those before it are numbered when it commits, and on an idle server the numberers
  that its NOTIFY wakes find nothing to do (no transaction, no commit to wait for). Among
  other writes it leaves that to the numberers, a round trip less per write under load.
- the sealer (`seal`) hashes the entries below the horizon into the chain. The chain's
  order is (xid, id). Every transaction of this database whose id is below the horizon
  (`horizon`) has finished, and any later writer gets a larger id, so the entries below
  it are final: they are hashed in (xid, id) order after the last sealed entry. The worker
  seals once a second; `audit verify` and `audit export` seal first.

On SQLite the recorder numbers and seals as it writes (its writers take turns), so nothing
waits here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, and_, bindparam, select, text, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry
from casefolio.outbound import recorder
from casefolio.outbound.chain import GENESIS, entry_document, next_hash

#: pg_advisory_xact_lock keys: one sealer of the chain at a time, and one numberer of
#: changes at a time (apart, so that the chain's slower seal never holds up a change's
#: number; the numberers' is taken in the migrations' functions). A writer only tries the
#: numberers' at its end and never waits for it (recorder.number_own).
CHAIN_LOCK = 0x6361_7365_666F_6C69  # "casefoli"
NUMBER_LOCK = 0x6361_7365_666F_6C6B
SEAL_BATCH = 1000
NUMBER_BATCH = recorder.NUMBER_BATCH
#: In progress in another database of the cluster, as pg_stat_activity shows it (so never
#: a writer here; a transaction it does not show counts as this database's: the safe side).
_ELSEWHERE = (
    "EXISTS (SELECT FROM pg_stat_activity AS a"
    " WHERE a.datname IS DISTINCT FROM current_database()"
    " AND a.backend_xid::text::bigint = x::text::bigint % 4294967296)"
)
#: The oldest transaction of this database in progress in the statement's snapshot, or the
#: next id if there is none: the entries the statement sees below it are all there will be.
_SNAPSHOT_HORIZON = (
    "(SELECT COALESCE(MIN(x::text::bigint), MIN(pg_snapshot_xmax(s)::text::bigint))"
    " FROM pg_current_snapshot() AS s LEFT JOIN LATERAL pg_snapshot_xip(s) AS x"
    f" ON NOT {_ELSEWHERE})"
)
#: The same, leaving out transactions that have finished since the snapshot: every one
#: below it has finished, so a later statement sees all the rows below it.
_HORIZON_NOW = text(
    "SELECT COALESCE(MIN(x::text::bigint), MIN(pg_snapshot_xmax(s)::text::bigint))"
    " FROM pg_current_snapshot() AS s LEFT JOIN LATERAL pg_snapshot_xip(s) AS x"
    f" ON pg_xact_status(x) = 'in progress' AND NOT {_ELSEWHERE}"
)
_BELOW_HORIZON = text(f"audit_entries.xid < {_SNAPSHOT_HORIZON}")
#: Before every entry: (xid, id).
BEFORE_ALL = (-1, 0)

_TABLE: Table = AuditEntry.__table__  # type: ignore[assignment]
_LAST_SEALED = (
    select(_TABLE.c.xid, _TABLE.c.id, _TABLE.c.hash)
    .where(_TABLE.c.hash.is_not(None))
    .order_by(_TABLE.c.xid.desc(), _TABLE.c.id.desc())
    .limit(1)
)
_ASYNC_COMMIT = text("SET LOCAL synchronous_commit = off")
#: The numberer, with NUMBER_LOCK (a transaction that numbered waits, at its commit, for the
#: log to reach the disk: a number once read must never be handed out again, as it would
#: after a crash that lost it).
_NUMBER = text("SELECT casefolio_number_changes(:batch)")
_SEAL = _TABLE.update().where(_TABLE.c.id == bindparam("key")).values(hash=bindparam("sealed"))
#: PostgreSQL: a batch in one statement.
_SEAL_PG = text(
    "UPDATE audit_entries SET hash = v.hash"
    " FROM unnest(CAST(:ids AS bigint[]), CAST(:hashes AS text[])) AS v(id, hash)"
    " WHERE audit_entries.id = v.id"
)


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def past(
    session: AsyncSession,
    xid: ColumnElement[int] | QueryableAttribute[int],
    key: ColumnElement[int] | QueryableAttribute[int],
    after: tuple[int, int],
) -> ColumnElement[bool]:
    """Rows whose (xid, key) is after `after`. SQLite searches a row-value range by its
    first column only, which would read every row: there xid is always 0 (its writers take
    turns), so the range is on the key alone."""
    if _postgres(session):
        return tuple_(xid, key) > tuple_(*after)
    return and_(xid == 0, key > after[1])


async def horizon(session: AsyncSession) -> int:
    """PostgreSQL: a transaction id below which every transaction that can write here has
    finished (and any later writer gets a larger one): rows below it that a later
    statement reads are all there will be."""
    return int(await session.scalar(_HORIZON_NOW) or 0)


def _final(session: AsyncSession) -> ColumnElement[bool]:
    """Entries below the horizon of the snapshot of the statement that uses this."""
    return _BELOW_HORIZON if _postgres(session) else true()  # type: ignore[return-value]


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
    """Whether any entry can be sealed now (a read). The entries after the last sealed one
    are the unsealed ones: no index of its own for them, so that sealing an entry (its
    hash is in no index) can be a heap-only update."""
    position, _ = await last_sealed(session)
    found = await session.execute(
        select(_TABLE.c.id)
        .where(past(session, _TABLE.c.xid, _TABLE.c.id, position), _final(session))
        .limit(1)
    )
    return found.first() is not None


async def _lock(session: AsyncSession, key: int, *, wait: bool) -> bool:
    if wait:
        await session.execute(text(f"SELECT pg_advisory_xact_lock({key})"))
        return True
    return bool(await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({key})")))


async def number_pending(db: Database) -> int:
    """Number the committed changes, if there are any; return how many. Every change
    committed before the call has its number after it. One statement (PostgreSQL's
    casefolio_number_changes, migration 0006_h22s) in a transaction of its own."""
    if db.engine.dialect.name != "postgresql":
        return 0  # the recorder numbered them as it wrote them
    async with db.read() as session:  # autocommit: the call is its own transaction
        return int(await session.scalar(_NUMBER, {"batch": NUMBER_BATCH}) or 0)


async def seal(session: AsyncSession, *, wait: bool = True) -> int:
    """In a write transaction: seal every entry that can be; return how many. Without
    `wait`, give up at once (0) if another sealer is at work."""
    if _postgres(session):  # SQLite's write lock is the sealers' lock there
        if not await _lock(session, CHAIN_LOCK, wait=wait):
            return 0
        # A seal lost in a crash is made again, the same: its commit need not wait for
        # the log to reach the disk.
        await session.execute(_ASYNC_COMMIT)
    position, previous = await last_sealed(session)
    sealed = 0
    while True:
        # One statement: its rows and the horizon come from the same snapshot.
        rows = (
            await session.execute(
                select(_TABLE)
                .where(
                    _TABLE.c.hash.is_(None),
                    past(session, _TABLE.c.xid, _TABLE.c.id, position),
                    _final(session),
                )
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
        if _postgres(session):
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
