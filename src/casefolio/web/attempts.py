"""Budgets of password guesses, for sign-in and for the current password of a change.

Only wrong passwords count. Each attempt is charged before the password is checked, so that
guesses sent at once are all counted, and given back when it turns out right (or when the
attempt is refused without a check). While a budget is spent, the right password is
refused too: otherwise the answer would tell a guesser when they hit it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Response

from casefolio.api.ratelimit import RateLimiter
from casefolio.domain.errors import RateLimited
from casefolio.web.http import render

TOO_MANY = "Too many {what} attempts. Wait {seconds} seconds, then try again."


@dataclass(frozen=True)
class Charged:
    """The budgets one attempt was charged to, to give back when it did not count."""

    limiter: RateLimiter
    budgets: list[tuple[str, int]]

    async def give_back(self) -> None:
        for key, per_minute in self.budgets:
            await self.limiter.give_back(key, per_minute)


async def charge(limiter: RateLimiter, budgets: list[tuple[str, int]]) -> Charged:
    """Spend one attempt from each (key, per minute) budget and return what was spent; when
    one is used up, give back the others and raise RateLimited."""
    charged = Charged(limiter, [])
    try:
        for key, per_minute in budgets:
            await limiter.hit(key, per_minute)
            charged.budgets.append((key, per_minute))
    except RateLimited:
        await charged.give_back()
        raise
    return charged


def too_many(
    request: Request, exc: RateLimited, template: str, what: str, **context: object
) -> Response:
    """The page `template`, answered 429 with Retry-After, saying how long to wait."""
    message = TOO_MANY.format(what=what, seconds=exc.retry_after)
    refused = render(request, template, 429, error=message, **context)
    refused.headers["Retry-After"] = str(exc.retry_after)
    return refused
