"""The change feed: the outbox (`changes`) as a user sees it, in `seq` order, from a cursor.

A change gets its number only once it has committed, from one counter that numberers take
turns on (sealing.py; on SQLite, whose writers take turns, the recorder's): the numbers a
reader sees are all the numbers up to the newest it sees, and a change committed later gets
a larger one. So a reader that has seen number n has seen every change numbered up to n,
and never misses one. On PostgreSQL a reader numbers what has committed before it reads,
so it need not wait for the worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
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


def cursor_of(seq: int) -> str:
    return encode_cursor((seq,))


def seq_of(cursor: str) -> int:
    (seq,) = decode_cursor(cursor, (int,))
    if seq < 0:
        raise Invalid("The cursor is not valid. Use a nextCursor the feed returned.")
    return int(seq)


async def state(session: AsyncSession, name: str) -> int:
    return int(
        await session.scalar(select(OutboundState.value).where(OutboundState.name == name)) or 0
    )


async def head(session: AsyncSession) -> int:
    """The newest sequence number (or how far the feed was trimmed, if it is empty)."""
    newest = await session.scalar(select(func.max(Change.seq)))
    return max(int(newest or 0), await state(session, TRIMMED_THROUGH))


async def current(db: Database) -> int:
    """The cursor of now: past every change committed before the call."""
    await sealing.number_pending(db)
    async with db.read() as session:
        return await head(session)


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
    session: AsyncSession, *, who: Principal, after: int | None, project_id: int | None, limit: int
) -> FeedPage:
    """The changes after `after` (None: from the oldest kept)."""
    trimmed = await state(session, TRIMMED_THROUGH)
    if after is None:
        after = trimmed
    elif after < trimmed:
        raise Gone(RESYNC)
    # Every number up to `upto` is given (numbers go to committed changes, in order): a page
    # that reaches it can hand out `upto` as the next cursor, past changes the caller cannot
    # see.
    upto = await head(session)
    stmt = select(Change).where(
        Change.seq > after, Change.seq <= upto, Change.type.in_(FEED_TYPES), _visible(who)
    )
    if project_id is not None:
        stmt = stmt.where(Change.project_id == project_id)
    rows = list(await session.scalars(stmt.order_by(Change.seq).limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_seq = rows[-1].seq if has_more else max(upto, after)
    return FeedPage(rows, cursor_of(next_seq), has_more)


async def wait_for(
    db: Database,
    *,
    who: Principal,
    after: int | None,
    project_id: int | None,
    limit: int,
    wait: float,
) -> FeedPage:
    """Read the feed; while it is empty, wait up to `wait` seconds for a change to commit."""
    deadline = time.monotonic() + wait
    while True:
        # Whatever committed before this (the commit that woke it, say) gets its number now.
        await sealing.number_pending(db)
        async with db.read() as session:
            page = await read(session, who=who, after=after, project_id=project_id, limit=limit)
        left = deadline - time.monotonic()
        if page.changes or left <= 0:
            return page
        await signal.wait(min(left, RECHECK_SECONDS))


async def trim(session: AsyncSession, *, retention: timedelta) -> int:
    """Delete changes older than the retention that the worker has fanned out (never the
    newest, whose number the next one follows); return how many went."""
    cutoff = utcnow() - retention
    newest = await session.scalar(select(func.max(Change.seq)))
    last_old = await session.scalar(
        select(func.max(Change.seq)).where(
            Change.at < cutoff,
            Change.seq < (newest or 0),
            Change.seq <= await state(session, FANNED_OUT),
        )
    )
    if last_old is None:
        return 0
    removed = await session.execute(delete(Change).where(Change.seq <= last_old))
    await set_state(session, TRIMMED_THROUGH, int(last_old))
    return int(removed.rowcount)  # type: ignore[attr-defined]


async def set_state(session: AsyncSession, name: str, value: int) -> None:
    row = await session.get(OutboundState, name)
    if row is None:
        session.add(OutboundState(name=name, value=value))
    else:
        row.value = value
    await session.flush()
