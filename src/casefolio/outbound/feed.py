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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, String, and_, bindparam, delete, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database
from casefolio.db.models import Change, OutboundState
from casefolio.db.reads import Reader, read_all
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
#: The search indexer's position: the last change it has queued for extraction.
SEARCH_QUEUED = "search.queued"
#: The positions of the feed's readers inside casefolio: a trim never passes any of them,
#: or a reader that fell behind (an indexer failing for months) would skip changes.
READERS = (FANNED_OUT, SEARCH_QUEUED)
RESYNC = (
    "This cursor is older than the change history kept; resync (list the documents of "
    "each project) and start again from GET /api/v1/changes/cursor."
)
RESYNC_AHEAD = (
    "This cursor is past the newest change: the history was restored from an earlier "
    "backup since it was handed out. Resync (list the documents of each project) and start "
    "again from GET /api/v1/changes/cursor."
)


T = TypeVar("T")


@dataclass(frozen=True)
class FeedEntry:
    """A change as the feed shows it."""

    seq: int
    type: str
    project_id: int | None
    document_id: int | None
    version_id: int | None
    folder_id: int | None
    at: datetime


@dataclass(frozen=True)
class FeedPage:
    changes: list[FeedEntry]
    next_cursor: str
    has_more: bool


def cursor_of(seq: int) -> str:
    return encode_cursor((seq,))


def seq_of(cursor: str) -> int:
    (seq,) = decode_cursor(cursor, (int,))
    if seq < 0:
        raise Invalid("The cursor is not valid. Use a nextCursor the feed returned.")
    return int(seq)


_STATE = select(OutboundState.value).where(OutboundState.name == bindparam("name"))
#: The newest number and how far the feed was trimmed, in one statement (one snapshot).
_HEAD = select(
    func.max(Change.seq),
    select(OutboundState.value).where(OutboundState.name == TRIMMED_THROUGH).scalar_subquery(),
)


async def state(db: Reader, name: str) -> int:
    rows = await read_all(db, _STATE, {"name": name})
    return int(rows[0][0] or 0) if rows else 0


async def head(db: Reader) -> int:
    """The newest sequence number (or how far the feed was trimmed, if it is empty)."""
    newest, trimmed = await _head_and_trimmed(db)
    return max(newest, trimmed)


async def _head_and_trimmed(db: Reader) -> tuple[int, int]:
    [(newest, trimmed)] = await read_all(db, _HEAD, {})
    return int(newest or 0), int(trimmed or 0)


async def current(db: Database) -> int:
    """The cursor of now: past every change committed before the call."""
    await sealing.number_pending(db)
    async with db.read() as session:
        return await head(session)


#: FeedEntry's fields, in order.
_ENTRY_COLUMNS: list[Any] = [
    Change.seq,
    Change.type,
    Change.project_id,
    Change.document_id,
    Change.version_id,
    Change.folder_id,
    Change.at,
]


def _page_statement(*, operator: bool, one_project: bool) -> Select[Any]:
    """A page of changes: numbered after `after` up to `upto`, of the feed's types, that the
    user `user_id` sees (of `project_id` only, if `one_project`), at most `limit`."""
    # Access changes reach only the user they are about; other changes everyone who can see
    # the project now (so a project's changes stop after project.access_lost).
    mine = Change.user_id == bindparam("user_id")
    visible = (
        or_(Change.user_id.is_(None), mine)
        if operator
        else or_(
            and_(Change.user_id.is_(None), Change.project_id.in_(access.VISIBLE_PROJECT_IDS)),
            mine,
        )
    )
    # The types as the statement's own values, not an expanding IN list: compiled once.
    feed_types = [literal(name, String) for name in sorted(FEED_TYPES)]
    stmt = select(*_ENTRY_COLUMNS).where(
        Change.seq > bindparam("after"),
        Change.seq <= bindparam("upto"),
        Change.type.in_(feed_types),
        visible,
    )
    if one_project:
        stmt = stmt.where(Change.project_id == bindparam("project_id"))
    return stmt.order_by(Change.seq).limit(bindparam("limit"))


#: By (operator?, one project?): module constants, so that a reader runs each compiled once.
_PAGES = {
    (operator, one_project): _page_statement(operator=operator, one_project=one_project)
    for operator in (False, True)
    for one_project in (False, True)
}


async def read(
    db: Reader, *, who: Principal, after: int | None, project_id: int | None, limit: int
) -> FeedPage:
    """The changes after `after` (None: from the oldest kept). Each statement may see its
    own snapshot (a reader outside a transaction): the order below keeps the page right."""
    # Every number up to `upto` is given (numbers go to committed changes, in order): a page
    # that reaches it can hand out `upto` as the next cursor, past changes the caller cannot
    # see.
    newest, trimmed = await _head_and_trimmed(db)
    upto = max(newest, trimmed)
    if after is not None and after < trimmed:
        raise Gone(RESYNC)
    # Numbers only grow, and every cursor handed out was one of them: one past the newest
    # comes from a history since restored to an earlier state, whose new changes take the
    # numbers it names again. Served, it would skip them without a word.
    if after is not None and after > upto:
        raise Gone(RESYNC_AHEAD)
    start = trimmed if after is None else after
    rows = await read_all(
        db,
        _PAGES[who.is_operator, project_id is not None],
        {
            "after": start,
            "upto": upto,
            "user_id": who.user_id,
            "project_id": project_id,
            "limit": limit + 1,
        },
    )
    # Trimming only moves forward and records how far it went with what it removed: if it
    # has not passed the cursor now, it removed none of the rows just read.
    if after is not None and after < await state(db, TRIMMED_THROUGH):
        raise Gone(RESYNC)
    changes = [FeedEntry(*row) for row in rows[:limit]]
    has_more = len(rows) > limit
    next_seq = changes[-1].seq if has_more else max(upto, start)
    return FeedPage(changes, cursor_of(next_seq), has_more)


async def wait_for(
    db: Database, read_page: Callable[[], Awaitable[T]], *, empty: Callable[[T], bool], wait: float
) -> T:
    """Read a page of the feed (`read_page`); while it is `empty`, wait up to `wait` seconds
    for a change to commit and read it again."""
    deadline = time.monotonic() + wait
    while True:
        # Whatever committed before this (the commit that woke it, say) gets its number now.
        await sealing.number_pending(db)
        page = await read_page()
        left = deadline - time.monotonic()
        if not empty(page) or left <= 0:
            return page
        await signal.wait(min(left, RECHECK_SECONDS))


async def trim(session: AsyncSession, *, retention: timedelta) -> int:
    """Delete changes older than the retention that every reader (`READERS`) has passed
    (never the newest, whose number the next one follows); return how many went."""
    cutoff = utcnow() - retention
    newest = await session.scalar(select(func.max(Change.seq)))
    passed = min([await state(session, reader) for reader in READERS])
    last_old = await session.scalar(
        select(func.max(Change.seq)).where(
            Change.at < cutoff, Change.seq < (newest or 0), Change.seq <= passed
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
