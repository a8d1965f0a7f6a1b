"""API tokens: random secrets stored only as a hash, each acting with its owner's rights."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import ApiToken, User
from casefolio.db.types import utcnow
from casefolio.domain import access, events, text
from casefolio.domain.errors import Invalid, NotFound, Unauthenticated, found
from casefolio.domain.pages import Page, PageRequest, fetch_id_page
from casefolio.domain.principal import Principal

SECRET_PREFIX = "cf_"
# last_used_at is a hint, not an audit log: writing it on every request would make every
# read a write, which serialises SQLite. Once a minute per token is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)
INVALID_TOKEN = "The provided API token is invalid."
USER_DEACTIVATED = "The provided API token's user is deactivated."
#: The largest rate limit a token holds (a 32-bit column): about 2 billion requests/minute.
MAX_RATE_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str


def hash_secret(secret: str) -> str:
    # A 256-bit random secret needs no slow KDF: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


async def issue(
    session: AsyncSession,
    *,
    who: Principal | None,
    user_id: int,
    name: str,
    expires_at: datetime | None = None,
    rate_limit: int | None = None,
) -> IssuedToken:
    """Create a token for `user_id`; `who` None means the local administrator (CLI)."""
    if who is not None:
        access.require_self_or_operator(who, user_id, "create tokens for other users")
        if rate_limit is not None:
            access.require_operator(who, "set a token's rate limit")
    found(await session.get(User, user_id), f"User {user_id} not found.")
    name = text.required_name(name, of="token")
    if expires_at is not None:
        expires_at = _in_utc(expires_at)
        if expires_at <= utcnow():
            raise Invalid(
                "expiresAt must be in the future.",
                [{"field": "expiresAt", "message": "in the past"}],
            )
    if rate_limit is not None:
        _check_rate_limit(rate_limit)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user_id,
        name=name,
        secret_hash=hash_secret(secret),
        prefix=secret[:10],
        expires_at=expires_at,
        rate_limit=rate_limit,
    )
    session.add(token)
    await session.flush()
    events.emit(
        session, events.TokenIssued(subject_id=token.id, details={"userId": user_id, "name": name})
    )
    return IssuedToken(token=token, secret=secret)


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    #: Whether last_used_at is due for a write.
    stale: bool
    expires_at: datetime | None


async def authenticate(
    session: AsyncSession, *, secret: str, now: datetime | None = None
) -> Authenticated:
    """Given a secret, return its principal, whether last_used_at is due for a write, and when
    the token expires; `now` (default: the clock's) is the time it must not have expired by."""
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.secret_hash == hash_secret(secret))
        )
    ).one_or_none()
    if row is None:
        raise Unauthenticated(INVALID_TOKEN)
    token, user = row
    now = utcnow() if now is None else now
    if token.revoked_at is not None:
        raise Unauthenticated("The provided API token has been revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthenticated("The provided API token has expired.")
    if not user.active:
        raise Unauthenticated(USER_DEACTIVATED)
    principal = Principal.of(user, token_id=token.id, rate_limit=token.rate_limit)
    stale = token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION
    return Authenticated(principal, stale, token.expires_at)


async def touch(session: AsyncSession, *, token_id: int, at: datetime) -> None:
    """Record that the token was used `at` (the time `authenticate` checked it by)."""
    token = await session.get(ApiToken, token_id)
    if token is not None:
        token.last_used_at = at


async def _visible(session: AsyncSession, who: Principal | None, token_id: int) -> ApiToken:
    token = await session.get(ApiToken, token_id)
    # Someone else's token is "not found", not "forbidden": ids must not be probeable.
    if token is None or (who is not None and not who.is_operator and token.user_id != who.user_id):
        raise NotFound(f"Token {token_id} not found.")
    return token


async def list_page(
    session: AsyncSession, *, who: Principal | None, user_id: int | None, page: PageRequest
) -> Page[ApiToken]:
    """Active tokens; a user sees their own, an operator everyone's (or one user's)."""
    stmt = select(ApiToken).where(ApiToken.revoked_at.is_(None))
    if who is not None and not who.is_operator:
        stmt = stmt.where(ApiToken.user_id == who.user_id)
    elif user_id is not None:
        stmt = stmt.where(ApiToken.user_id == user_id)
    return await fetch_id_page(session, stmt, id_column=ApiToken.id, page=page)


async def revoke(session: AsyncSession, *, who: Principal | None, token_id: int) -> bool:
    """Revoke a token; return False when it was revoked already (nothing changes then)."""
    token = await _visible(session, who, token_id)
    # Locked and read again (PostgreSQL's writers overlap): one revocation is audited once.
    await session.refresh(token, with_for_update=True)
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    events.emit(
        session, events.TokenRevoked(subject_id=token.id, details={"userId": token.user_id})
    )
    return True


async def update(
    session: AsyncSession,
    *,
    who: Principal | None,
    token_id: int,
    name: str | None = None,
    rate_limit: int | None = None,
) -> ApiToken:
    token = await _visible(session, who, token_id)
    if token.revoked_at is not None:
        raise NotFound(f"Token {token_id} not found.")
    if rate_limit is not None:
        if who is not None:
            access.require_operator(who, "set a token's rate limit")
        _check_rate_limit(rate_limit)
        token.rate_limit = rate_limit
    if name is not None:
        token.name = text.required_name(name, of="token")
    events.emit(
        session,
        events.TokenUpdated(
            subject_id=token.id, details={"name": token.name, "rateLimit": token.rate_limit}
        ),
    )
    return token


def _in_utc(instant: datetime) -> datetime:
    try:
        return instant.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is in the year 10000 in UTC
        raise Invalid(
            "expiresAt must be before the year 10000 in UTC.",
            [{"field": "expiresAt", "message": "past the last storable instant"}],
        ) from None


def _check_rate_limit(rate_limit: int) -> None:
    if not 1 <= rate_limit <= MAX_RATE_LIMIT:
        raise Invalid(
            f"rateLimit must be between 1 and {MAX_RATE_LIMIT} requests per minute.",
            [{"field": "rateLimit", "message": "out of range"}],
        )
