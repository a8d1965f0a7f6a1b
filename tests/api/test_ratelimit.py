"""One process's budgets count as the shared (Redis) ones do."""

from __future__ import annotations

import anyio
import pytest

from casefolio.api.ratelimit import LocalWindows, RateLimiter
from casefolio.domain.errors import RateLimited
from tests import services
from tests.factories import wait_before_budget_sequence

REDIS_URL = services.redis_url(13)
MINUTE = 60


def test_a_full_window_refuses_until_its_weight_slides_out() -> None:
    windows = LocalWindows()
    start = 1_000 * MINUTE  # a window boundary
    answers = [windows.hit("k", 10, MINUTE, start + 30) for _ in range(11)]
    assert [allowed for allowed, _, _ in answers] == [True] * 10 + [False]
    assert [remaining for _, remaining, _ in answers] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
    # The current window's first request frees up when it ends, 30 s on.
    assert answers[-1][2] == pytest.approx(start + 60)

    # Halfway into the next window the ten weigh five: five more are allowed.
    later = [windows.hit("k", 10, MINUTE, start + 90) for _ in range(6)]
    assert [allowed for allowed, _, _ in later] == [True] * 5 + [False]
    # Other keys have budgets of their own, and two windows on nothing of "k" is left.
    assert windows.hit("other", 10, MINUTE, start + 90)[:2] == (True, 9)
    assert windows.hit("k", 10, MINUTE, start + 181)[:2] == (True, 9)


def test_finished_windows_are_forgotten() -> None:
    windows = LocalWindows()
    for second in range(0, 10 * MINUTE, 7):
        windows.hit(f"key{second}", 5, MINUTE, 50_000 * MINUTE + second)
    # Only the last two windows' counters are kept: one per key hit in them.
    assert len(windows) == sum(1 for second in range(0, 10 * MINUTE, 7) if second >= 8 * MINUTE)


async def test_a_limiter_counts_by_its_clock() -> None:
    now = [1_000 * MINUTE + 45.0]  # 15 s before a window's end
    limiter = RateLimiter(2, clock=lambda: now[0])
    first, second = await limiter.hit("k"), await limiter.hit("k")
    assert (first.limit, first.remaining, first.reset_seconds) == (2, 1, 15)
    assert second.remaining == 0
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("k")
    assert refused.value.retry_after == 15
    # A whole window later the two hits weigh nothing: the budget is full again.
    now[0] += 2 * MINUTE
    assert (await limiter.hit("k")).remaining == 1


@pytest.mark.redis
async def test_memory_and_redis_budgets_agree() -> None:
    local = RateLimiter.from_url("", 5)
    shared = RateLimiter.from_url(REDIS_URL, 5)
    await shared.reset()
    await anyio.sleep(wait_before_budget_sequence())
    try:
        seen: dict[str, list[object]] = {"local": [], "shared": []}
        for name, limiter in (("local", local), ("shared", shared)):
            for _ in range(6):
                try:
                    seen[name].append((await limiter.hit("agree")).remaining)
                except RateLimited as refused:
                    seen[name].append(("refused", getattr(refused.budget, "remaining", None)))
        assert seen["local"] == [4, 3, 2, 1, 0, ("refused", 0)]
        assert seen["shared"] == seen["local"]
    finally:
        await shared.reset()
        await shared.close()
        await local.close()


def test_a_request_given_back_frees_its_place_in_the_budget() -> None:
    windows = LocalWindows()
    start = 2_000 * MINUTE
    assert [windows.hit("k", 2, MINUTE, start + 1)[0] for _ in range(3)] == [True, True, False]
    windows.give_back("k", MINUTE, start + 2)
    assert windows.hit("k", 2, MINUTE, start + 3)[0] is True
    # Given back after the window turned: the previous window's count goes down.
    windows.give_back("k", MINUTE, start + MINUTE + 1)
    assert windows._counts[("k", 2_000)] == 1
    windows.give_back("nothing", MINUTE, start)  # nothing counted: nothing to give back
    assert ("nothing", 2_000) not in windows._counts


@pytest.mark.redis
async def test_redis_gives_a_request_back_too() -> None:
    shared = RateLimiter.from_url(REDIS_URL, 2)
    await shared.reset()
    await anyio.sleep(wait_before_budget_sequence())
    try:
        await shared.hit("back")
        await shared.hit("back")
        with pytest.raises(RateLimited):
            await shared.hit("back")
        await shared.give_back("back")
        assert (await shared.hit("back")).remaining == 0
    finally:
        await shared.reset()
        await shared.close()
