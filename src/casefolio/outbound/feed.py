"""The change feed: the outbox (`changes`) as a user sees it, in order, from a cursor.

A position in the outbox is (xid, seq): on PostgreSQL `xid` is the writing transaction's id,
which the database stamps on the row (writers do not take turns, so sequence numbers alone
may commit out of order); on SQLite, whose writers take turns, it is 0 and seq order is
commit order. Readers only read up to the horizon (`horizon`): below it no change can
still appear, so a reader that has passed a position never misses a change before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database
from casefolio.db.models import Change, OutboundState
from casefolio.db.types import utcnow
from casefolio.domain import access
from casefolio.domain.errors import Gone, Invalid
from casefolio.domain.events import FEED_TYPES
from casefolio.domain.pages import decode_cursor, encode_cursor
from casefolio.domain.principal import Principal
from casefolio.outbound import sealing
from casefolio.outbound.signal import signal

#: (xid, seq): a change's place in the feed, or a cursor (the last place read).
Position = tuple[int, int]
#: The feed's order, and the key a position compares with.
ORDER = (Change.xid, Change.seq)
KEY = tuple_(*ORDER)

MAX_WAIT = 60
#: How often a long-poll looks at the outbox without a wake-up: the wake-ups of another
#: SQLite process do not reach this one.
RECHECK_SECONDS = 1.0
TRIMMED_THROUGH = "changes.trimmed_through"
FANNED_OUT = "webhooks.fanned_out"
RESYNC = (
    "This cursor is older than the change history kept; resync (list the documents of "
    "each project) and start again from GET /api/v1/changes/cursor."
)


@dataclass(frozen=True)
class FeedPage:
    changes: list[Change]
    next_cursor: str
    has_more: bool


def cursor_of(position: Position) -> str:
    return encode_cursor(position)


def position_of(cursor: str) -> Position:
    xid, seq = decode_cursor(cursor, (int, int))
    if xid < 0 or seq < 0:
        raise Invalid("The cursor is not valid. Use a nextCursor the feed returned.")
    return int(xid), int(seq)


async def position(session: AsyncSession, name: str) -> Position:
    """A named position (how far the worker fanned out, the feed was trimmed, ...)."""
    row = (
        await session.execute(
            select(OutboundState.xid, OutboundState.value).where(OutboundState.name == name)
        )
    ).first()
    return (int(row.xid), int(row.value)) if row else (0, 0)


async def horizon(session: AsyncSession) -> Position:
    """The last position at which every change has committed: on PostgreSQL, just before the
    oldest transaction still running (no seq is 0); on SQLite, the newest change."""
    if session.get_bind().dialect.name == "postgresql":
        return await sealing.horizon(session), 0
    return 0, int(await session.scalar(select(func.max(Change.seq))) or 0)


def between(session: AsyncSession, after: Position, upto: Position) -> ColumnElement[bool]:
    """The changes after one position, up to (and with) another."""
    return sealing.past(session, Change.xid, Change.seq, after, upto)


async def head(session: AsyncSession) -> Position:
    """The cursor of now (or how far the feed was trimmed, if that is further)."""
    return max(await horizon(session), await position(session, TRIMMED_THROUGH))


def _visible(who: Principal) -> ColumnElement[bool]:
    # Access changes reach only the user they are about; other changes everyone who can see
    # the project now (so a project's changes stop after project.access_lost).
    mine = Change.user_id == who.user_id
    if who.is_operator:
        return or_(Change.user_id.is_(None), mine)
    return or_(
        and_(Change.user_id.is_(None), Change.project_id.in_(access.visible_project_ids(who))),
        mine,
    )


async def read(
    session: AsyncSession,
    *,
    who: Principal,
    after: Position | None,
    project_id: int | None,
    limit: int,
) -> FeedPage:
    """The changes after `after` (None: from the oldest kept)."""
    trimmed = await position(session, TRIMMED_THROUGH)
    if after is None:
        after = trimmed
    elif after < trimmed:
        raise Gone(RESYNC)
    # Everything up to `upto` has committed: a page that reaches it can hand out `upto` as
    # the next cursor, past changes the caller cannot see.
    upto = await head(session)
    stmt = select(Change).where(
        between(session, after, upto), Change.type.in_(FEED_TYPES), _visible(who)
    )
    if project_id is not None:
        stmt = stmt.where(Change.project_id == project_id)
    rows = list(await session.scalars(stmt.order_by(*ORDER).limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_position = (rows[-1].xid, rows[-1].seq) if has_more else max(upto, after)
    return FeedPage(rows, cursor_of(next_position), has_more)


async def wait_for(
    db: Database,
    *,
    who: Principal,
    after: Position | None,
    project_id: int | None,
    limit: int,
    wait: float,
) -> FeedPage:
    """Read the feed; while it is empty, wait up to `wait` seconds for a change to commit."""
    deadline = time.monotonic() + wait
    while True:
        async with db.read() as session:
            page = await read(session, who=who, after=after, project_id=project_id, limit=limit)
        left = deadline - time.monotonic()
        if page.changes or left <= 0:
            return page
        await signal.wait(min(left, RECHECK_SECONDS))


async def trim(session: AsyncSession, *, retention: timedelta) -> int:
    """Delete changes older than the retention that the worker has fanned out (never the
    newest, whose number the next one follows on SQLite); return how many went."""
    cutoff = utcnow() - retention
    newest = await session.scalar(select(func.max(Change.seq)))
    last_old = (
        await session.execute(
            select(*ORDER)
            .where(
                Change.at < cutoff,
                Change.seq < (newest or 0),
                tuple_(*await position(session, FANNED_OUT)) >= KEY,
            )
            .order_by(Change.xid.desc(), Change.seq.desc())
            .limit(1)
        )
    ).first()
    if last_old is None:
        return 0
    through = (int(last_old.xid), int(last_old.seq))
    removed = await session.execute(delete(Change).where(tuple_(*through) >= KEY))
    await set_position(session, TRIMMED_THROUGH, through)
    return int(removed.rowcount)  # type: ignore[attr-defined]


async def set_position(session: AsyncSession, name: str, to: Position) -> None:
    row = await session.get(OutboundState, name)
    if row is None:
        session.add(OutboundState(name=name, xid=to[0], value=to[1]))
    else:
        row.xid, row.value = to
    await session.flush()
