"""Web sign-in sessions: kept in the database and checked on every page request.

Deleting a session's row signs that browser out in every server process at once; that is
what sign-out, a password change, a reset and deactivation do. A session ends on its own
after `idle` without a request, or `absolute` after it began. The cookie holds a random
secret; the row holds its SHA-256 and the session's CSRF token (a synchronizer token that
every state-changing request must send back).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import User, WebSession
from casefolio.db.reads import Reader, read_all
from casefolio.db.types import utcnow
from casefolio.domain.principal import Principal

# last_seen_at is written at most this often: a page view need not be a write.
TOUCH_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class Opened:
    secret: str
    csrf_token: str


@dataclass(frozen=True)
class SignedIn:
    """Who a session belongs to, its CSRF token, and whether last_seen_at is due a write."""

    principal: Principal
    session_id: str
    csrf_token: str
    stale: bool


def session_id_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def open_session(session: AsyncSession, *, user_id: int) -> Opened:
    secret = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            id=session_id_of(secret),
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=now,
            last_seen_at=now,
        )
    )
    await session.flush()
    return Opened(secret, csrf_token)


# Named columns of both tables, so the fast path's reader (plain tuples) reads it too.
_SESSIONS = cast(Table, WebSession.__table__)
_USERS = cast(Table, User.__table__)
_RESOLVE = (
    select(
        _SESSIONS.c.id,
        _SESSIONS.c.csrf_token,
        _SESSIONS.c.created_at,
        _SESSIONS.c.last_seen_at,
        _USERS.c.id,
        _USERS.c.email,
        _USERS.c.name,
        _USERS.c.is_operator,
        _USERS.c.active,
    )
    .join_from(_SESSIONS, _USERS, _USERS.c.id == _SESSIONS.c.user_id)
    .where(_SESSIONS.c.id == bindparam("session_id"))
)


async def resolve(
    db: Reader, *, secret: str, lifetimes: Lifetimes, now: datetime | None = None
) -> SignedIn | None:
    """Given a cookie's secret, return who is signed in, or None when the session is unknown,
    timed out, or its user deactivated. One statement: a session or, cheaper on every page
    request, the database's StatementReader will do."""
    now = now or utcnow()
    rows = await read_all(db, _RESOLVE, {"session_id": session_id_of(secret)})
    if not rows:
        return None
    session_id, csrf_token, created_at, last_seen_at, user_id, email, name, operator, active = rows[
        0
    ]
    if not active or now - last_seen_at >= lifetimes.idle or now - created_at >= lifetimes.absolute:
        return None
    principal = Principal(user_id, email, name, operator)
    stale = now - last_seen_at >= TOUCH_RESOLUTION
    return SignedIn(principal, session_id, csrf_token, stale)


def csrf_matches(signed_in: SignedIn, sent: str | None) -> bool:
    # As bytes: compare_digest raises on str that is not ASCII, and anyone can send that.
    if sent is None:
        return False
    expected = signed_in.csrf_token.encode()
    return hmac.compare_digest(expected, sent.encode("utf-8", "surrogatepass"))


async def touch(session: AsyncSession, *, session_id: str) -> None:
    await session.execute(
        update(WebSession).where(WebSession.id == session_id).values(last_seen_at=utcnow())
    )


async def end(session: AsyncSession, *, session_id: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.id == session_id))


async def end_all(session: AsyncSession, *, user_id: int) -> None:
    """Sign a user out everywhere: every process checks the row on every request."""
    await session.execute(delete(WebSession).where(WebSession.user_id == user_id))


async def end_expired(session: AsyncSession, *, lifetimes: Lifetimes) -> None:
    """Remove sessions that can no longer be used (they are refused either way)."""
    now = utcnow()
    await session.execute(
        delete(WebSession).where(
            (WebSession.last_seen_at <= now - lifetimes.idle)
            | (WebSession.created_at <= now - lifetimes.absolute)
        )
    )
