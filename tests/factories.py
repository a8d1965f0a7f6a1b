"""Factories that make real rows through the domain layer."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from casefolio.db.engine import Database
from casefolio.domain import system, tokens, users

_counter = itertools.count(1)


@dataclass(frozen=True)
class Actor:
    user_id: int
    email: str
    token: str
    token_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Token": self.token}


async def switch_api(db: Database, *, on: bool) -> None:
    async with db.write() as session:
        await system.update(session, who=None, integrations_api_enabled=on)


async def make_actor(
    db: Database,
    *,
    email: str | None = None,
    name: str = "Test User",
    operator: bool = False,
    rate_limit: int | None = None,
) -> Actor:
    email = email or f"user{next(_counter)}@example.com"
    async with db.write() as session:
        [user] = await users.create_many(
            session, new_users=[users.NewUser(email, name, is_operator=operator)]
        )
        issued = await tokens.issue(
            session, who=None, user_id=user.id, name="test", rate_limit=rate_limit
        )
        return Actor(user.id, user.email, issued.secret, issued.token.id)
