"""Passwords for the web pages: Argon2id hashes, sign-in, invitations and resets.

A password is never stored, logged or shown; only its Argon2id hash (pwdlib) is kept. Setting
a password, or an operator resetting one, ends every web session of that user.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import PasswordLink, User
from casefolio.db.types import utcnow
from casefolio.domain import access, events, users, websessions
from casefolio.domain.errors import Conflict, Invalid, NotFound, Unauthenticated, WrongPassword
from casefolio.domain.principal import Principal

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
WRONG_CREDENTIALS = "Wrong e-mail address or password."
DEACTIVATED = "This account is deactivated; ask an operator to reactivate it."
LINK_INVALID = "This link is not valid: it was used already, has expired, or never existed."
INVITE = "invite"
RESET = "reset"
SIGNIN_ACCOUNT_KEY = "signin:account:"
SIGNIN_ADDRESS_KEY = "signin:address:"

_HASHER = PasswordHash((Argon2Hasher(),))
# Verified against when the e-mail address is unknown, so that a wrong address takes as long
# as a wrong password and sign-in does not reveal who has an account. Written out rather than
# hashed at import, which every casefolio process (each CLI command) would pay for; a test
# checks that it costs what `hash_password` makes (the hash of "casefolio-no-such-user").
STAND_IN_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$BAgu2qQ0hTgHb5eNBc4Xew"
    "$J1WRnAZlowF0Ch+MSDkQY2GIsT2cEk6iSXAP55VVbUU"
)


@dataclass(frozen=True)
class IssuedLink:
    user: User
    secret: str


@dataclass(frozen=True)
class NewPassword:
    """A password that passed the rules, hashed. Made (`hashed`) before the transaction that
    stores it: hashing takes tens of milliseconds of CPU on purpose, and on SQLite every
    other writer would wait for it."""

    hash: str = field(repr=False)


def check_password(password: str) -> str:
    """Given a proposed password, return it or raise Invalid saying what is wrong."""
    if len(password) < MIN_PASSWORD:
        raise Invalid(
            f"A password needs at least {MIN_PASSWORD} characters.",
            [{"field": "password", "message": "too short"}],
        )
    if len(password) > MAX_PASSWORD:
        raise Invalid(
            f"A password can have at most {MAX_PASSWORD} characters.",
            [{"field": "password", "message": "too long"}],
        )
    return password


async def hash_password(password: str) -> str:
    # Argon2 takes tens of milliseconds of CPU on purpose: off the event loop.
    return await anyio.to_thread.run_sync(_HASHER.hash, check_password(password))


async def hashed(password: str) -> NewPassword:
    """Given a proposed password, return it hashed, or raise Invalid saying what is wrong."""
    return NewPassword(await hash_password(password))


async def _verify(password: str, stored: str) -> bool:
    return await anyio.to_thread.run_sync(_HASHER.verify, password[:MAX_PASSWORD], stored)


def account_limit_key(email: str) -> str:
    """The rate-limit key of the account an e-mail address signs in to: the key its user is
    found under, so every spelling that reaches one account (full-width letters, NFD) spends
    one budget."""
    return SIGNIN_ACCOUNT_KEY + users.email_key(email)


def signin_limit_keys(email: str, address: str) -> tuple[str, str]:
    """The rate-limit keys a sign-in attempt is charged to: its account and its address."""
    return account_limit_key(email), SIGNIN_ADDRESS_KEY + address


def principal_of(user: User) -> Principal:
    return Principal.of(user)


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User:
    """Given an e-mail address and a password, return the user or raise Unauthenticated."""
    user = await users.find_by_email(session, email=email)
    stored = user.password_hash if user is not None else None
    valid = await _verify(password, stored or STAND_IN_HASH)
    if user is None or stored is None or not valid:
        raise Unauthenticated(WRONG_CREDENTIALS)
    if not user.active:
        raise Unauthenticated(DEACTIVATED)
    return user


async def set_password(
    session: AsyncSession, *, user: User, password: NewPassword, link: str | None = None
) -> None:
    """Set a user's password (who may is the caller's business) and end their sessions;
    `link` is the purpose of the set-password link that was used, if one was."""
    user.password_hash = password.hash
    await websessions.end_all(session, user_id=user.id)
    details = {"email": user.email} | ({"link": link} if link else {})
    events.emit(session, events.PasswordSet(subject_id=user.id, details=details))
    await session.flush()


async def check_own(session: AsyncSession, *, who: Principal, current: str) -> str:
    """Check the caller's current password, on a read session (the check takes as long as
    hashing); return the stored hash it matched, for `change_own`. WrongPassword when it is
    not right."""
    user = await users.get(session, user_id=who.user_id)
    if user.password_hash is None or not await _verify(current, user.password_hash):
        raise WrongPassword(
            "The current password is not right.", [{"field": "current", "message": "wrong"}]
        )
    return user.password_hash


async def change_own(
    session: AsyncSession, *, who: Principal, matched: str, new: NewPassword
) -> None:
    """Change the caller's password, whose current one `check_own` matched to the stored
    hash `matched` (WrongPassword if the password changed since); every session ends."""
    user = await users.get(session, user_id=who.user_id)
    if user.password_hash != matched:
        raise WrongPassword(
            "Your password was changed meanwhile; enter the current one again.",
            [{"field": "current", "message": "changed meanwhile"}],
        )
    await set_password(session, user=user, password=new)


async def issue_link(
    session: AsyncSession,
    *,
    who: Principal | None,
    user_id: int,
    purpose: str,
    lifetime: timedelta,
) -> IssuedLink:
    """Create a one-time set-password link for a user; earlier unused links of theirs stop
    working. A reset also clears the password and ends the user's sessions."""
    if who is not None:
        access.require_operator(who, "invite users or reset passwords")
    user = await users.get(session, user_id=user_id)
    now = utcnow()
    await session.execute(
        update(PasswordLink)
        .where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None))
        .values(used_at=now)
    )
    if purpose == RESET:
        user.password_hash = None
        await websessions.end_all(session, user_id=user.id)
    secret = secrets.token_urlsafe(32)
    link = PasswordLink(
        user_id=user.id,
        secret_hash=_hash_secret(secret),
        purpose=purpose,
        created_by=who.user_id if who else None,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(link)
    await session.flush()
    events.emit(
        session,
        events.PasswordLinkIssued(
            subject_id=user.id,
            details={"email": user.email, "purpose": purpose, "linkId": link.id},
        ),
    )
    return IssuedLink(user, secret)


async def invite(
    session: AsyncSession,
    *,
    who: Principal,
    email: str,
    name: str,
    is_operator: bool,
    lifetime: timedelta,
) -> IssuedLink:
    """Create a user and the link with which they set their first password."""
    access.require_operator(who, "invite users")
    [user] = await users.create_many(
        session, new_users=[users.NewUser(email, name, is_operator=is_operator)]
    )
    return await issue_link(session, who=who, user_id=user.id, purpose=INVITE, lifetime=lifetime)


async def link_user(session: AsyncSession, *, secret: str) -> User:
    """Given a link's secret, return the user it is for, or raise NotFound."""
    link = await _usable_link(session, secret)
    return await users.get(session, user_id=link.user_id)


async def redeem_link(session: AsyncSession, *, secret: str, password: NewPassword) -> User:
    """Set the password of the link's user and use the link up."""
    link = await _usable_link(session, secret)
    user = await users.get(session, user_id=link.user_id)
    if not user.active:
        raise Conflict(DEACTIVATED)
    await set_password(session, user=user, password=password, link=link.purpose)
    link.used_at = utcnow()
    await session.flush()
    return user


async def _usable_link(session: AsyncSession, secret: str) -> PasswordLink:
    link = (
        await session.scalars(
            select(PasswordLink).where(PasswordLink.secret_hash == _hash_secret(secret))
        )
    ).one_or_none()
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        raise NotFound(LINK_INVALID)
    return link


def _hash_secret(secret: str) -> str:
    # 256 random bits: a plain hash suffices (nothing to brute-force), as for API tokens.
    return hashlib.sha256(secret.encode()).hexdigest()
