"""Sign-in, sessions and their ends: sign-out, password change, reset, deactivation, timeouts,
and the rate limit on attempts."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from casefolio.api.ratelimit import RateLimiter
from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import PasswordLink, User, WebSession
from casefolio.db.types import utcnow
from casefolio.domain import accounts, users, websessions
from casefolio.domain.errors import Forbidden, Invalid, WrongPassword
from casefolio.domain.principal import Principal
from tests.api.snapshots import snapshot
from tests.clocks import Seconds
from tests.factories import Actor, make_actor
from tests.web.conftest import PASSWORD, Browser, Person, give_password

MakePerson = Callable[[Actor], Awaitable[Person]]


async def _sessions(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(WebSession)) or 0)


async def test_sign_in_sets_a_strict_cookie_and_opens_the_pages(
    db: Database, browsers: Browser, member: Actor
) -> None:
    await give_password(db, member.email)
    http = await browsers()
    assert (await http.get("/projects")).headers["location"] == "/signin?next=%2Fprojects"
    signed_in = await http.post(
        "/signin", data={"email": member.email.upper(), "password": PASSWORD, "next": "/tokens"}
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/tokens"
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    page = await http.get("/projects")
    assert page.status_code == 200 and "Milo Member" in page.text


def test_a_password_of_ten_to_1024_characters_is_allowed_and_no_other() -> None:
    """Both bounds are inclusive: ten characters are enough, 1024 are not too many."""
    for allowed in ("x" * accounts.MIN_PASSWORD, "x" * accounts.MAX_PASSWORD):
        assert accounts.check_password(allowed) == allowed
    for refused in ("x" * (accounts.MIN_PASSWORD - 1), "x" * (accounts.MAX_PASSWORD + 1)):
        with pytest.raises(Invalid):
            accounts.check_password(refused)
    assert (accounts.MIN_PASSWORD, accounts.MAX_PASSWORD) == (10, 1024)


async def test_wrong_password_and_unknown_address_get_the_same_refusal(
    db: Database, browsers: Browser, member: Actor
) -> None:
    await give_password(db, member.email)
    http = await browsers()
    wrong = await http.post("/signin", data={"email": member.email, "password": "not it at all"})
    unknown = await http.post("/signin", data={"email": "nobody@example.com", "password": "x"})
    for refused in (wrong, unknown):
        assert refused.status_code == 401
        assert "Wrong e-mail address or password." in refused.text
        assert "set-cookie" not in refused.headers
    assert await _sessions(db) == 0


async def test_a_user_without_a_password_cannot_sign_in(
    db: Database, browsers: Browser, member: Actor
) -> None:
    http = await browsers()
    refused = await http.post("/signin", data={"email": member.email, "password": ""})
    assert refused.status_code == 401
    assert await _sessions(db) == 0


async def test_a_user_without_a_password_cannot_sign_in_with_the_stand_in_password(
    db: Database, browsers: Browser, member: Actor
) -> None:
    """An unknown address is checked against a stand-in hash, so that it takes as long as a
    wrong password; a user without a password must not be let in by the stand-in's password."""
    http = await browsers()
    for password in ("", "casefolio-no-such-user"):
        refused = await http.post("/signin", data={"email": member.email, "password": password})
        assert refused.status_code == 401
        assert "Wrong e-mail address or password." in refused.text
        assert "set-cookie" not in refused.headers
    assert await _sessions(db) == 0


async def test_the_stand_in_hash_costs_what_a_stored_password_costs() -> None:
    """Algorithm, version, memory, time and parallelism: all but the salt and the hash."""
    stored = await accounts.hash_password("a password of a person")
    assert stored.rsplit("$", 2)[0] == accounts.STAND_IN_HASH.rsplit("$", 2)[0]
    assert stored != accounts.STAND_IN_HASH


async def test_sign_out_ends_the_session_for_its_cookie_everywhere(
    db: Database, person: MakePerson, member: Actor, browsers: Browser
) -> None:
    someone = await person(member)
    stolen = await browsers()
    stolen.cookies = httpx.Cookies(someone.http.cookies)
    assert (await stolen.get("/projects")).status_code == 200
    out = await someone.post("/signout")
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    # The same cookie, replayed by another client, opens nothing any more.
    assert (await stolen.get("/projects")).status_code == 303
    assert await _sessions(db) == 0


async def test_signing_out_in_one_browser_leaves_the_others_signed_in(
    db: Database, person: MakePerson, member: Actor, browsers: Browser
) -> None:
    """Sign-out ends the session of the browser that asks; signing out everywhere is what a
    password change does."""
    here = await person(member)
    there = Person(member, await browsers())
    assert (await there.sign_in()).status_code == 303
    assert (await here.post("/signout")).status_code == 303
    assert (await here.http.get("/projects")).status_code == 303
    assert (await there.http.get("/projects")).status_code == 200
    assert await _sessions(db) == 1


async def test_a_session_never_authenticates_the_apis_and_a_token_never_opens_a_page(
    person: MakePerson, operator: Actor, client: httpx.AsyncClient
) -> None:
    someone = await person(operator)
    for path in ("/api/v1/users", "/api/v3/documents"):
        assert (await someone.http.get(path)).status_code == 401, path
    page = await client.get("/projects", headers=operator.headers)
    assert page.status_code == 303 and page.headers["location"].startswith("/signin")
    assert (await client.get("/api/v1/users", headers=operator.headers)).status_code == 200


async def test_deactivation_through_the_api_ends_open_sessions_at_once(
    person: MakePerson, member: Actor, operator: Actor, client: httpx.AsyncClient
) -> None:
    someone = await person(member)
    assert (await someone.http.get("/projects")).status_code == 200
    off = await client.patch(
        f"/api/v1/user/id/{member.user_id}", json={"active": False}, headers=operator.headers
    )
    assert off.status_code == 200
    assert (await someone.http.get("/projects")).status_code == 303
    # Reactivation does not bring the old session back: it was ended, not paused.
    on = await client.patch(
        f"/api/v1/user/id/{member.user_id}", json={"active": True}, headers=operator.headers
    )
    assert on.status_code == 200
    assert (await someone.http.get("/projects")).status_code == 303
    assert (await someone.sign_in()).status_code == 303


async def test_reactivating_an_active_user_leaves_their_open_sessions_alone(
    db: Database, person: MakePerson, member: Actor, operator: Actor, client: httpx.AsyncClient
) -> None:
    """Deactivation ends a user's sessions at once, not a later reactivation: reactivating
    someone already active changes nothing, their pages stay open."""
    someone = await person(member)
    on = await client.patch(
        f"/api/v1/user/id/{member.user_id}", json={"active": True}, headers=operator.headers
    )
    assert on.status_code == 200 and on.json()["active"] is True
    assert (await someone.http.get("/projects")).status_code == 200
    assert await _sessions(db) == 1
    off = await client.patch(
        f"/api/v1/user/id/{member.user_id}", json={"active": False}, headers=operator.headers
    )
    assert off.status_code == 200
    assert await _sessions(db) == 0  # ended, not only refused while deactivated


async def test_a_deactivated_user_cannot_sign_in(
    db: Database, person: MakePerson, member: Actor, operator: Actor, browsers: Browser
) -> None:
    admin = await person(operator)
    await give_password(db, member.email)
    off = await admin.post(f"/admin/users/{member.user_id}/active", {"active": "false"})
    assert off.status_code == 303
    refused = await Person(member, await browsers()).sign_in()
    assert refused.status_code == 401 and "deactivated" in refused.text
    assert await _sessions(db) == 1  # the operator's own


async def test_changing_ones_password_signs_out_every_other_browser(
    db: Database, person: MakePerson, member: Actor, browsers: Browser
) -> None:
    here = await person(member)
    there = Person(member, await browsers())
    assert (await there.sign_in()).status_code == 303
    wrong = await here.post(
        "/account/password",
        {"current": "not my password", "new": "a new password!", "again": "a new password!"},
    )
    assert wrong.status_code == 400 and "current password is not right" in wrong.text
    changed = await here.post(
        "/account/password",
        {"current": PASSWORD, "new": "a new password!", "again": "a new password!"},
    )
    assert changed.status_code == 303
    assert (await here.http.get("/projects")).status_code == 200
    assert (await there.http.get("/projects")).status_code == 303
    assert (await there.sign_in()).status_code == 401
    assert (await there.sign_in("a new password!")).status_code == 303


class _HeldHasher:
    """The password hasher, held at each hash or check until the test lets it go on: a
    slow machine's Argon2."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.entered = threading.Event()
        self.go_on = threading.Event()

    def _held(self) -> None:
        self.entered.set()
        self.go_on.wait(timeout=60)

    def hash(self, password: str) -> str:
        self._held()
        return str(self._real.hash(password))

    def verify(self, password: str, stored: str) -> bool:
        self._held()
        return bool(self._real.verify(password, stored))


async def test_a_password_change_holds_up_no_other_write_while_it_hashes(
    client: httpx.AsyncClient,
    person: MakePerson,
    member: Actor,
    operator: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = await person(member)
    hasher = _HeldHasher(accounts._HASHER)
    monkeypatch.setattr(accounts, "_HASHER", hasher)
    form = {"current": PASSWORD, "new": "a new password!", "again": "a new password!"}
    changing = asyncio.ensure_future(here.post("/account/password", form))
    try:
        await anyio.to_thread.run_sync(hasher.entered.wait, 30)
        with anyio.fail_after(20):  # SQLite: it waited for the write lock the change held
            made = await client.post(
                "/api/v1/projects", json={"name": "Meanwhile"}, headers=operator.headers
            )
        assert made.status_code == 201, made.text
    finally:
        hasher.go_on.set()
    assert (await changing).status_code == 303


async def test_a_made_up_set_password_link_costs_no_hash(
    browsers: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = _HeldHasher(accounts._HASHER)
    hasher.go_on.set()
    monkeypatch.setattr(accounts, "_HASHER", hasher)
    guest = await browsers()

    made_up = await guest.post(
        "/set-password/not-a-link", data={"password": "a long password", "again": "a long password"}
    )

    assert made_up.status_code == 404
    assert not hasher.entered.is_set()  # refused before Argon2's fifth of a second of CPU


async def test_invitation_link_sets_a_password_once(
    person: MakePerson, operator: Actor, browsers: Browser
) -> None:
    admin = await person(operator)
    invited = await admin.post(
        "/admin/users", {"email": "ines@example.com", "name": "Ines Invited"}
    )
    assert invited.status_code == 200
    link = invited.text.split('id="link" type="text" readonly value="', 1)[1].split('"', 1)[0]
    path = link.removeprefix("http://testserver")
    guest = await browsers()
    assert "Ines Invited" in (await guest.get(path)).text
    short = await guest.post(path, data={"password": "short", "again": "short"})
    assert short.status_code == 400 and "at least 10 characters" in short.text
    done = await guest.post(path, data={"password": "ines password", "again": "ines password"})
    assert done.status_code == 200 and "Your password is set" in done.text
    again = await guest.post(path, data={"password": "other password", "again": "other password"})
    assert again.status_code == 404
    signed_in = await guest.post(
        "/signin", data={"email": "ines@example.com", "password": "ines password"}
    )
    assert signed_in.status_code == 303


def _link_path(page: str) -> str:
    """The set-password link an operator's users page shows, as a path of this site."""
    found = re.search(r"/set-password/[A-Za-z0-9_-]+", page)
    assert found, "the page shows no set-password link"
    return found.group(0)


async def _password_hash(db: Database, user_id: int) -> str | None:
    async with db.read() as session:
        return await session.scalar(select(User.password_hash).where(User.id == user_id))


async def test_a_newer_reset_link_makes_the_earlier_one_useless(
    db: Database, person: MakePerson, operator: Actor, member: Actor, browsers: Browser
) -> None:
    """Only the latest link of a user works: a link handed on earlier (and perhaps to the
    wrong person) must not set the password once another was issued."""
    admin = await person(operator)
    first = _link_path((await admin.post(f"/admin/users/{member.user_id}/reset")).text)
    second = _link_path((await admin.post(f"/admin/users/{member.user_id}/reset")).text)
    assert first != second
    guest = await browsers()
    assert (await guest.get(first)).status_code == 404
    form = {"password": "earlier link pw", "again": "earlier link pw"}
    assert (await guest.post(first, data=form)).status_code == 404
    assert await _password_hash(db, member.user_id) is None
    done = await guest.post(second, data={"password": "later link pw!", "again": "later link pw!"})
    assert done.status_code == 200 and "Your password is set" in done.text


async def test_a_link_sent_two_different_passwords_sets_neither_and_still_works(
    db: Database, person: MakePerson, operator: Actor, member: Actor, browsers: Browser
) -> None:
    """A typing slip must not become the password nobody knows: the two must be the same."""
    admin = await person(operator)
    path = _link_path((await admin.post(f"/admin/users/{member.user_id}/reset")).text)
    guest = await browsers()
    stored = await snapshot(db)
    refused = await guest.post(path, data={"password": "first password", "again": "first passwrod"})
    assert refused.status_code == 400 and "not the same" in refused.text
    assert await snapshot(db) == stored
    done = await guest.post(path, data={"password": "first password", "again": "first password"})
    assert done.status_code == 200 and "Your password is set" in done.text


async def test_an_expired_link_sets_no_password(
    db: Database, person: MakePerson, operator: Actor, browsers: Browser
) -> None:
    admin = await person(operator)
    invited = await admin.post("/admin/users", {"email": "late@example.com", "name": "Late"})
    path = _link_path(invited.text)
    async with db.write() as session:
        await session.execute(
            update(PasswordLink).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        user_id = (await users.get_by_email(session, email="late@example.com")).id
    guest = await browsers()
    assert (await guest.get(path)).status_code == 404
    form = {"password": "too late a pw", "again": "too late a pw"}
    assert (await guest.post(path, data=form)).status_code == 404
    assert await _password_hash(db, user_id) is None


async def test_a_deactivated_users_link_sets_no_password(
    db: Database, person: MakePerson, operator: Actor, browsers: Browser
) -> None:
    """Deactivation keeps a person out: the link they were sent must not let them set a
    password that reactivation would then open the account with."""
    admin = await person(operator)
    invited = await admin.post("/admin/users", {"email": "gone@example.com", "name": "Gone"})
    path = _link_path(invited.text)
    async with db.read() as session:
        user_id = (await users.get_by_email(session, email="gone@example.com")).id
    off = await admin.post(f"/admin/users/{user_id}/active", {"active": "false"})
    assert off.status_code == 303
    refused = await (await browsers()).post(
        path, data={"password": "gone but here", "again": "gone but here"}
    )
    assert refused.status_code == 409 and "deactivated" in refused.text
    assert await _password_hash(db, user_id) is None


async def test_a_password_changed_after_the_current_one_was_checked_is_not_overwritten(
    db: Database, member: Actor
) -> None:
    """The current password is checked before the write (hashing is slow); if the password
    changed in between (a reset, another browser), the check no longer holds."""
    await give_password(db, member.email)
    who = Principal(member.user_id, member.email, "Milo Member", False)
    async with db.read() as session:
        matched = await accounts.check_own(session, who=who, current=PASSWORD)
    await give_password(db, member.email, "changed meanwhile")
    changed = await _password_hash(db, member.user_id)
    new = await accounts.hashed("a new password!")
    with pytest.raises(WrongPassword, match="changed meanwhile"):
        async with db.write() as session:
            await accounts.change_own(session, who=who, matched=matched, new=new)
    assert await _password_hash(db, member.user_id) == changed


async def test_operator_reset_ends_sessions_and_the_old_password(
    person: MakePerson, operator: Actor, member: Actor
) -> None:
    admin = await person(operator)
    someone = await person(member)
    reset = await admin.post(f"/admin/users/{member.user_id}/reset")
    assert reset.status_code == 200 and "/set-password/" in reset.text
    assert (await someone.http.get("/projects")).status_code == 303
    assert (await someone.sign_in()).status_code == 401


async def test_only_an_operator_issues_a_reset_link_and_a_refused_reset_changes_nothing(
    db: Database, person: MakePerson, operator: Actor, member: Actor
) -> None:
    """A reset clears the password and signs its user out: the domain refuses anyone but an
    operator itself, not only the users page that shows the link."""
    admin = await person(operator)
    someone = await person(member)
    stored = await snapshot(db)
    refused = await someone.post(f"/admin/users/{operator.user_id}/reset")
    assert refused.status_code == 403 and "/set-password/" not in refused.text
    who = Principal(member.user_id, member.email, "Milo Member", False)
    with pytest.raises(Forbidden):
        async with db.write() as session:
            await accounts.issue_link(
                session,
                who=who,
                user_id=operator.user_id,
                purpose=accounts.RESET,
                lifetime=timedelta(hours=1),
            )
    assert await snapshot(db) == stored
    assert (await admin.http.get("/projects")).status_code == 200


async def test_sessions_time_out_when_idle_and_after_their_maximum(
    db: Database, member: Actor
) -> None:
    lifetimes = websessions.Lifetimes(idle=timedelta(minutes=30), absolute=timedelta(hours=8))
    async with db.write() as session:
        opened = await websessions.open_session(session, user_id=member.user_id)
    start = utcnow()
    async with db.read() as session:

        def at(delta: timedelta) -> Awaitable[websessions.SignedIn | None]:
            return websessions.resolve(
                session, secret=opened.secret, lifetimes=lifetimes, now=start + delta
            )

        assert await at(timedelta(minutes=29)) is not None
        assert await at(timedelta(minutes=31)) is None
    async with db.write() as session:
        # Kept busy: seen a minute ago, but started nine hours ago.
        row = await session.get(WebSession, websessions.session_id_of(opened.secret))
        assert row is not None
        row.created_at = start - timedelta(hours=9)
        row.last_seen_at = start - timedelta(minutes=1)
    async with db.read() as session:
        assert (
            await websessions.resolve(session, secret=opened.secret, lifetimes=lifetimes, now=start)
            is None
        )


async def test_a_session_ends_the_moment_its_idle_time_or_its_maximum_is_reached(
    db: Database, member: Actor
) -> None:
    """Each lifetime is how long a session may last: at exactly that length it is over, not
    one more instant (the rows hold milliseconds, so the edges are exact)."""
    lifetimes = websessions.Lifetimes(idle=timedelta(minutes=30), absolute=timedelta(hours=8))
    instant = timedelta(milliseconds=1)
    async with db.write() as session:
        opened = await websessions.open_session(session, user_id=member.user_id)
    session_id = websessions.session_id_of(opened.secret)

    async def signed_in_at(when: datetime) -> bool:
        async with db.read() as session:
            found = await websessions.resolve(
                session, secret=opened.secret, lifetimes=lifetimes, now=when
            )
        return found is not None

    async with db.read() as session:
        row = await session.get(WebSession, session_id)
        assert row is not None
        started, seen = row.created_at, row.last_seen_at
    assert await signed_in_at(seen + lifetimes.idle - instant)
    assert not await signed_in_at(seen + lifetimes.idle)
    async with db.write() as session:
        # Kept busy to the end: seen a minute before its maximum is reached.
        row = await session.get(WebSession, session_id)
        assert row is not None
        row.last_seen_at = started + lifetimes.absolute - timedelta(minutes=1)
    assert await signed_in_at(started + lifetimes.absolute - instant)
    assert not await signed_in_at(started + lifetimes.absolute)


async def test_a_page_view_a_while_after_the_last_keeps_the_session_from_going_idle(
    db: Database, person: MakePerson, member: Actor
) -> None:
    """When a session was last seen is written at most once a minute; a view after that
    minute writes it, so that a session in use never times out as idle."""
    someone = await person(member)
    async with db.write() as session:
        await session.execute(
            update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=5))
        )
    before = utcnow()
    assert (await someone.http.get("/projects")).status_code == 200
    async with db.read() as session:
        seen = await session.scalar(select(WebSession.last_seen_at))
    assert seen is not None and seen >= before


async def test_clearing_out_ended_sessions_removes_idle_ones_and_busy_ones_past_their_maximum(
    db: Database, member: Actor
) -> None:
    """Either limit ends a session, so either one makes its row go (sign-in clears them out);
    a session within both stays."""
    lifetimes = websessions.Lifetimes(idle=timedelta(minutes=30), absolute=timedelta(hours=8))
    async with db.write() as session:
        idle, busy, live = [
            await websessions.open_session(session, user_id=member.user_id) for _ in range(3)
        ]
    now = utcnow()
    ages = {
        idle.secret: (timedelta(hours=2), timedelta(minutes=31)),
        busy.secret: (timedelta(hours=9), timedelta(minutes=1)),
    }
    async with db.write() as session:
        for secret, (started, seen) in ages.items():
            row = await session.get(WebSession, websessions.session_id_of(secret))
            assert row is not None
            row.created_at, row.last_seen_at = now - started, now - seen
    async with db.write() as session:
        await websessions.end_expired(session, lifetimes=lifetimes)
    async with db.read() as session:
        left = set(await session.scalars(select(WebSession.id)))
    assert left == {websessions.session_id_of(live.secret)}


def _clocked(application: FastAPI) -> Seconds:
    """The rate limiter's time, moved by the test: no sleeps, no minute boundaries."""
    clock = Seconds(1_000 * 60.0 + 1)  # just after a window starts
    state = application.state.casefolio
    state.limiter = RateLimiter(state.settings.rate_limit_per_minute, clock=clock)
    return clock


async def _sign_in(http: httpx.AsyncClient, email: str, password: str, **kw: Any) -> int:
    response = await http.post("/signin", data={"email": email, "password": password}, **kw)
    return response.status_code


async def test_sign_in_attempts_are_limited_per_account(
    app: FastAPI, db: Database, browsers: Browser, member: Actor
) -> None:
    clock = _clocked(app)
    await give_password(db, member.email)
    http = await browsers()
    for _ in range(5):
        assert await _sign_in(http, member.email, "guess guess") == 401
    limited = await http.post("/signin", data={"email": member.email, "password": PASSWORD})
    assert limited.status_code == 429
    assert "Too many sign-in attempts" in limited.text
    assert int(limited.headers["retry-after"]) >= 1
    assert await _sessions(db) == 0
    # Two windows on, the failures have slid out.
    clock.now += 120
    assert await _sign_in(http, member.email, PASSWORD) == 303


async def test_spellings_of_one_address_share_its_accounts_budget(
    app: FastAPI, db: Database, browsers: Browser, member: Actor
) -> None:
    _clocked(app)
    await give_password(db, member.email)
    http = await browsers()
    local, domain = member.email.split("@")
    # Full-width letters, upper case, spaces: each finds the same user (users.email_key).
    fullwidth = domain.replace("e", "\uff45", 1).replace("x", "\uff58", 1)
    spellings = [
        f"{local}@{fullwidth}",
        f"{local}@{domain.upper()}",
        f"  {local}@{domain.replace('m', chr(0xFF4D), 1)} ",
        member.email,
        f"{local}@{fullwidth.upper()}",
    ]
    assert len(set(spellings)) == 5
    for spelling in spellings:
        assert await _sign_in(http, spelling, "guess guess") == 401
    for spelling in [member.email, f"{local}@{fullwidth}"]:
        assert await _sign_in(http, spelling, PASSWORD) == 429
    assert await _sessions(db) == 0


async def test_wrong_current_passwords_spend_the_accounts_sign_in_budget(
    app: FastAPI, db: Database, person: MakePerson, member: Actor, browsers: Browser
) -> None:
    clock = _clocked(app)
    here = await person(member)
    new = {"new": "a new password!", "again": "a new password!"}
    # Refusals that checked no password (the new one typed twice differently) cost nothing.
    for _ in range(6):
        mismatch = await here.post(
            "/account/password", {"current": PASSWORD, "new": "a new password!", "again": "x"}
        )
        assert mismatch.status_code == 400
    for _ in range(3):
        wrong = await here.post("/account/password", {"current": "guess guess", **new})
        assert wrong.status_code == 400 and "current password is not right" in wrong.text
    # The same budget as sign-in's: two wrong sign-ins spend the rest of it.
    for _ in range(2):
        assert await _sign_in(await browsers(), member.email, "guess guess") == 401
    for current in ["guess guess", PASSWORD]:
        limited = await here.post("/account/password", {"current": current, **new})
        assert limited.status_code == 429
        assert "Too many password attempts" in limited.text
        assert int(limited.headers["retry-after"]) >= 1
    assert (await Person(member, await browsers()).sign_in()).status_code == 429
    clock.now += 120
    changed = await here.post("/account/password", {"current": PASSWORD, **new})
    assert changed.status_code == 303
    assert (await Person(member, await browsers()).sign_in("a new password!")).status_code == 303


async def test_successful_sign_ins_do_not_use_up_the_budget(
    app: FastAPI, db: Database, browsers: Browser, member: Actor
) -> None:
    _clocked(app)
    await give_password(db, member.email)
    http = await browsers()
    for _ in range(12):  # more than the five attempts a minute an account is allowed
        assert await _sign_in(http, member.email, PASSWORD) == 303
    # Failures still count, and only they: four of five, then one more, then refused.
    for _ in range(4):
        assert await _sign_in(http, member.email, "guess guess") == 401
    assert await _sign_in(http, member.email, PASSWORD) == 303
    assert await _sign_in(http, member.email, "guess guess") == 401
    assert await _sign_in(http, member.email, PASSWORD) == 429
    assert await _sessions(db) == 13


@pytest.fixture(
    params=[(["127.0.0.1"], "127.0.0.1"), (["10.0.0.0/8", "127.0.0.0/8"], "::ffff:127.0.0.9")],
    ids=["an-address", "a-network-seen-by-a-dual-stack-listener"],
)
def proxy(request: pytest.FixtureRequest) -> tuple[list[str], str]:
    """CASEFOLIO_TRUSTED_PROXIES, and the address the proxy's requests come from."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def tight_app(settings: Settings, proxy: tuple[list[str], str]) -> AsyncIterator[FastAPI]:
    tight = settings.model_copy(
        update={"signin_address_attempts_per_minute": 3, "trusted_proxies": proxy[0]}
    )
    application = create_app(tight)
    async with application.router.lifespan_context(application):
        yield application


async def test_sign_in_attempts_are_limited_per_address_behind_a_trusted_proxy(
    tight_app: FastAPI, settings: Settings, proxy: tuple[list[str], str]
) -> None:
    clock = _clocked(tight_app)
    db: Database = tight_app.state.casefolio.db
    users = [await make_actor(db) for _ in range(5)]
    await give_password(db, users[4].email)
    transport = httpx.ASGITransport(app=tight_app, client=(proxy[1], 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        proxied = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        # Successful sign-ins from the address do not count against it.
        for _ in range(4):
            assert await _sign_in(http, users[4].email, PASSWORD, headers=proxied) == 303
        for user in users[:3]:
            assert await _sign_in(http, user.email, "x", headers=proxied) == 401
        assert await _sign_in(http, users[3].email, "x", headers=proxied) == 429
        # A refused attempt was not checked and is not counted against the account either.
        # (Each from an address of its own, whose budget of three is not the limit here.)
        for n in range(6):
            other = {**proxied, "X-Forwarded-For": f"203.0.113.{10 + n}"}
            expected = 401 if n < 5 else 429
            assert await _sign_in(http, users[3].email, "x", headers=other) == expected
        clock.now += 120
        assert await _sign_in(http, users[3].email, "x", headers=proxied) == 401


async def test_a_forged_forwarded_address_does_not_escape_the_limit(
    tight_app: FastAPI, proxy: tuple[list[str], str]
) -> None:
    _clocked(tight_app)  # the four attempts in one window, however slow the machine
    db: Database = tight_app.state.casefolio.db
    users = [await make_actor(db) for _ in range(4)]
    transport = httpx.ASGITransport(app=tight_app, client=(proxy[1], 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        answers = []
        for n, user in enumerate(users):
            # What the browser wrote, then what the proxy appended: its real address.
            forged = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.9"}
            answers.append(await _sign_in(http, user.email, "x", headers=forged))
    assert answers == [401, 401, 401, 429]


async def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(
    tight_app: FastAPI, proxy: tuple[list[str], str]
) -> None:
    db: Database = tight_app.state.casefolio.db
    user = await make_actor(db)
    await give_password(db, user.email)
    transport = httpx.ASGITransport(app=tight_app, client=(proxy[1], 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        signed_in = await http.post(
            "/signin",
            data={"email": user.email, "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert signed_in.status_code == 303
        assert "secure" in signed_in.headers["set-cookie"].lower()
    untrusted = httpx.ASGITransport(app=tight_app, client=("198.51.100.7", 5000))
    async with httpx.AsyncClient(transport=untrusted, base_url="http://testserver") as http:
        signed_in = await http.post(
            "/signin",
            data={"email": user.email, "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert signed_in.status_code == 303
        assert "secure" not in signed_in.headers["set-cookie"].lower()
