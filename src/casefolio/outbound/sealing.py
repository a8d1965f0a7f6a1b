"""Sealing: number committed changes for the feed, and hash audit entries into the chain
once no entry can come before them.

On PostgreSQL writers do not take turns (recorder.py): a change is written without its feed
number (`seq` is None) and an entry unsealed, both with the id of their transaction (`xid`).
One sealer at a time (an advisory lock that only sealers take, held through its commit):

- numbers every change it sees committed, after the newest number, in (xid, id) order.
  A change is numbered only once it has committed, and numbers are handed out in increasing
  order by sealers that take turns, so the numbers any reader sees are all those up to the
  newest it sees: a reader that has read up to n never misses a change, and a change that
  commits later (however early its transaction began) gets a larger number. No horizon:
  a long transaction holds up nobody's change but its own.
- hashes the entries below the horizon into the chain. The chain's order is (xid, id).
  Every transaction of this database whose id is below the horizon (`horizon`) has
  finished, and any later writer gets a larger id, so the entries below it are final: they
  are hashed in (xid, id) order after the last sealed entry.

Numbering cannot wait: the feed's readers number before they read, and the worker before
it fans out (each waking at a commit's NOTIFY); entries are sealed by the worker once a
second, and by `audit verify` and `audit export` first. On SQLite the recorder numbers and
seals as it writes (its writers take turns), so nothing waits here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, bindparam, select, text, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry
from casefolio.outbound.chain import GENESIS, entry_document, next_hash

#: pg_advisory_xact_lock key: one sealer at a time (writers never take it).
CHAIN_LOCK = 0x6361_7365_666F_6C69  # "casefoli"
SEAL_BATCH = 1000
NUMBER_BATCH = 5000
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
#: PostgreSQL: the next committed changes without a number get the next numbers. The
#: statement's snapshot is taken after the sealers' lock: it sees every earlier number.
_NUMBER = text(
    "WITH last AS (SELECT COALESCE(MAX(seq), 0) AS seq FROM changes),"
    " todo AS (SELECT id, row_number() OVER (ORDER BY xid, id) AS n FROM changes"
    " WHERE seq IS NULL ORDER BY xid, id LIMIT :batch)"
    " UPDATE changes SET seq = last.seq + todo.n FROM todo, last WHERE changes.id = todo.id"
)
_UNNUMBERED = text("SELECT EXISTS (SELECT FROM changes WHERE seq IS NULL)")
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


async def unnumbered(session: AsyncSession) -> bool:
    """Whether a committed change waits for its number (a read; PostgreSQL only)."""
    if not _postgres(session):
        return False
    return bool(await session.scalar(_UNNUMBERED))


async def _lock(session: AsyncSession, *, wait: bool) -> bool:
    if wait:
        await session.execute(text(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})"))
        return True
    return bool(await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({CHAIN_LOCK})")))


async def number(session: AsyncSession) -> int:
    """In a write transaction holding the sealers' lock (PostgreSQL): number every committed
    change that has no number yet; return how many."""
    numbered = 0
    while True:
        done = await session.execute(_NUMBER, {"batch": NUMBER_BATCH})
        numbered += int(done.rowcount)  # type: ignore[attr-defined]
        if done.rowcount < NUMBER_BATCH:  # type: ignore[attr-defined]
            return numbered


@dataclass(frozen=True)
class Sealed:
    numbered: int = 0
    entries: int = 0

    def __int__(self) -> int:
        return self.numbered + self.entries


async def seal(session: AsyncSession, *, wait: bool = True, entries: bool = True) -> Sealed:
    """In a write transaction: number the committed changes and (with `entries`) seal every
    entry that can be; return how many of each. Without `wait`, give up at once (nothing
    done) if another sealer is at work."""
    numbered = 0
    if _postgres(session):  # SQLite's write lock is the sealers' lock there
        if not await _lock(session, wait=wait):
            return Sealed()
        numbered = await number(session)
        if not numbered:
            # A seal lost in a crash is made again, the same: its commit need not wait for
            # the log to reach the disk. Numbers, once read, must not be handed out again:
            # a transaction that gave any waits for its commit to be durable.
            await session.execute(text("SET LOCAL synchronous_commit = off"))
    return Sealed(numbered, await _seal_entries(session) if entries else 0)


async def _seal_entries(session: AsyncSession) -> int:
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


async def seal_pending(db: Database, *, wait: bool = True, entries: bool = True) -> Sealed:
    """Number the committed changes and (with `entries`) seal the entries that can be, if
    there is anything to do (a read first: most calls find nothing)."""
    async with db.read() as session:
        if not await unnumbered(session) and not (entries and await sealable(session)):
            return Sealed()
    async with db.write() as session:
        return await seal(session, wait=wait, entries=entries)
