"""A secret kept for one read after a redirect: sealed with the cookie, read once, by kind."""

from __future__ import annotations

from sqlalchemy import select

from casefolio.db.engine import Database
from casefolio.db.models import WebSession
from casefolio.domain import shown_once, websessions
from tests.factories import Actor


async def test_a_kept_secret_is_sealed_read_once_and_only_by_its_kind(
    db: Database, member: Actor
) -> None:
    async with db.write() as session:
        opened = await websessions.open_session(session, user_id=member.user_id)
        other = await websessions.open_session(session, user_id=member.user_id)
        await shown_once.keep(
            session, cookie_secret=opened.secret, kind="token", value={"secret": "cf_top"}
        )
    async with db.read() as session:
        stored = list(await session.scalars(select(WebSession.shown_once)))
    assert any(stored) and not any("cf_top" in (s or "") for s in stored)
    async with db.write() as session:
        # Another browser's cookie opens nothing; another kind leaves it waiting.
        assert await shown_once.take(session, cookie_secret=other.secret, kind="token") is None
        assert await shown_once.take(session, cookie_secret=opened.secret, kind="hook") is None
        taken = await shown_once.take(session, cookie_secret=opened.secret, kind="token")
        assert taken == {"secret": "cf_top"}
        assert await shown_once.take(session, cookie_secret=opened.secret, kind="token") is None


async def test_what_one_browser_keeps_leaves_what_waits_for_another_alone(
    db: Database, member: Actor
) -> None:
    """Two browsers (of one person, or of two) each create a token at once: each is shown its
    own, neither loses it to the other's."""
    async with db.write() as session:
        first = await websessions.open_session(session, user_id=member.user_id)
        second = await websessions.open_session(session, user_id=member.user_id)
        for opened, value in ((first, "cf_first"), (second, "cf_second")):
            await shown_once.keep(
                session, cookie_secret=opened.secret, kind="token", value={"secret": value}
            )
    async with db.write() as session:
        taken = [
            await shown_once.take(session, cookie_secret=opened.secret, kind="token")
            for opened in (first, second)
        ]
    assert taken == [{"secret": "cf_first"}, {"secret": "cf_second"}]
