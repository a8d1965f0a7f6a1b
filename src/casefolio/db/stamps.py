"""The instant a write's changes carry (`updated_at`), and which of them a sync may show yet.

A sync client lists documents in updatedAt order and next asks for those changed at or
after the newest updatedAt it saw (`afterDate`). That misses nothing only if no change can
become visible later carrying an earlier instant than one already shown.

On SQLite writers take turns (BEGIN IMMEDIATE): a stamp taken holding the write lock follows
the order of the commits. On PostgreSQL writers overlap, so a transaction stamped first may
commit last. There the database stamps a transaction once it has an id, so that from then on
it is listed as writing in pg_stat_activity, and a listing in updatedAt order shows only
what is stamped before the earliest start of a transaction still writing (`SETTLED`): what
it leaves out, it shows once that transaction is over. Both instants come from the
database's clock, so several application servers need not agree on the time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import hold_sqlite_write_lock
from casefolio.db.types import utcnow

_KEPT = "casefolio.stamp"
#: PostgreSQL: give the transaction its id (listed as writing from now on), then the time.
_STAMP = text("SELECT pg_current_xact_id(), date_trunc('milliseconds', clock_timestamp())")
#: PostgreSQL: the instant before which every stamp is settled (no transaction still writing
#: can carry an earlier one). Read in a statement of its own, before the listing's snapshot:
#: a transaction that ends between the two is then either counted here or seen there.
SETTLED = text(
    "SELECT date_trunc('milliseconds', coalesce(min(xact_start), now()))"
    " FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL"
)


async def stamp(session: AsyncSession) -> datetime:
    """Given a write session, return the instant its transaction's changes carry (the same
    for all of them), taken as the module notes say."""
    conn = await session.connection()
    transaction = session.sync_session.get_transaction()
    kept = session.info.get(_KEPT)
    if kept is not None and kept[0] is transaction:
        instant: datetime = kept[1]
        return instant
    if conn.dialect.name == "postgresql":
        instant = (await conn.execute(_STAMP)).one()[1].astimezone(UTC)
    else:
        await hold_sqlite_write_lock(session)
        instant = utcnow()
    session.info[_KEPT] = (transaction, instant)
    return instant
