"""One process's budgets count as the shared (Redis) ones do, and stand in for them while
Redis cannot be reached."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from casefolio.api.ratelimit import (
    SHARED_RETRY_SECONDS,
    SHARED_TIMEOUT_SECONDS,
    Budget,
    LocalWindows,
    RateLimiter,
)
from casefolio.config import Settings
from casefolio.domain.errors import RateLimited
from tests import services
from tests.conftest import IN_CI
from tests.factories import make_actor, serving, wait_before_budget_sequence
from tests.servers import closed_port, free_port

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
async def test_a_limit_lowered_below_what_was_spent_says_none_remaining() -> None:
    """A token's rateLimit lowered below what it spent this minute: the refusal says 0
    remaining, never a negative number, counted here or in Redis."""
    now = [1_000 * MINUTE + 10.0]
    local = RateLimiter(5, clock=lambda: now[0])
    shared = RateLimiter.from_url(REDIS_URL, 5)
    key = f"lowered-{uuid.uuid4().hex}"  # a window of its own in Redis
    try:
        for limiter in (local, shared):
            for _ in range(4):
                await limiter.hit(key, 5)
            with pytest.raises(RateLimited) as refused:
                await limiter.hit(key, 2)
            assert isinstance(refused.value.budget, Budget)
            assert (refused.value.budget.limit, refused.value.budget.remaining) == (2, 0)
    finally:
        await shared.close()


async def test_seconds_to_the_reset_are_rounded_up() -> None:
    """Half a second into a second, the wait is rounded up: a client that waits the
    Retry-After it was given is not refused again for having come back too early."""
    now = [1_000 * MINUTE + 30.5]  # 29.5 s before the window ends
    limiter = RateLimiter(1, clock=lambda: now[0])
    assert (await limiter.hit("k")).reset_seconds == 30
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("k")
    assert refused.value.retry_after == 30
    now[0] += 30
    assert (await limiter.hit("k")).remaining == 0


async def test_a_refusal_waits_until_the_previous_windows_weight_frees_a_request() -> None:
    """Refused early in a window, the wait is until enough of the previous window's weight
    has slid out, not until this window ends: refused just before Retry-After has passed,
    allowed just after."""
    start = 1_000 * MINUTE
    now = [start + 59.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        await limiter.hit("k")
    # 10 s into the next window the three weigh 2.5: one more is allowed, then none.
    now[0] = start + MINUTE + 10
    assert (await limiter.hit("k")).remaining == 0
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("k")
    assert refused.value.retry_after == 10  # when the three weigh 2
    now[0] += 9.5
    with pytest.raises(RateLimited):
        await limiter.hit("k")
    now[0] += 1
    assert (await limiter.hit("k")).remaining == 0


async def test_a_refusal_says_to_wait_at_least_a_second() -> None:
    """At the very instant the previous window's weight frees a request the reset is 0 s
    away; Retry-After still says 1, never 0."""
    now = [1_000 * MINUTE + 59.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    await limiter.hit("k")
    await limiter.hit("k")
    # Halfway into the next window the two weigh one: one more is allowed, then none.
    now[0] = 1_001 * MINUTE + 30.0
    assert (await limiter.hit("k")).remaining == 0
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("k")
    assert isinstance(refused.value.budget, Budget)
    assert refused.value.budget.reset_seconds == 0
    assert refused.value.retry_after == 1


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


@pytest.mark.redis
async def test_a_changed_limit_counts_what_was_spent_under_the_old_one() -> None:
    """A token's rateLimit lowered mid-minute does not start it on an empty budget."""
    shared = RateLimiter.from_url(REDIS_URL, 5)
    local = RateLimiter.from_url("", 5)
    await shared.reset()
    await anyio.sleep(wait_before_budget_sequence())
    try:
        for limiter in (shared, local):
            for _ in range(3):
                await limiter.hit("changed", 5)
            with pytest.raises(RateLimited):
                await limiter.hit("changed", 3)
            budget = await limiter.hit("changed", 10)
            assert (budget.limit, budget.remaining) == (10, 6)
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


def test_a_request_given_back_is_taken_from_the_window_it_was_counted_in() -> None:
    """Given back in a window that counted it, the request leaves that window: one taken
    from the previous window instead would weigh only its share, and the current one
    would keep the request that was given back."""
    windows = LocalWindows()
    start = 3_000 * MINUTE
    windows.hit("k", 5, MINUTE, start + 30)
    # Halfway into the next window the one request before weighs a half.
    assert windows.hit("k", 5, MINUTE, start + 90)[:2] == (True, 4)
    windows.give_back("k", MINUTE, start + 90)
    assert windows.hit("k", 5, MINUTE, start + 90)[:2] == (True, 4)


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


@pytest.mark.redis
async def test_redis_says_a_window_just_started_resets_when_it_ends() -> None:
    """A client's first request starts its window in Redis: its place is held for the whole
    minute, and RateLimit-Reset says so (it said 1 when the budget was read in the
    millisecond the window started, and 61 otherwise)."""
    shared = RateLimiter.from_url(REDIS_URL, 5)
    try:
        # Fresh keys: each hit starts a window; many, so that some are read in its millisecond.
        budgets = [await shared.hit(f"fresh-{uuid.uuid4().hex}") for _ in range(30)]
        assert {(b.remaining, b.reset_seconds) for b in budgets} == {(4, 60)}
    finally:
        await shared.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own, which it may stop and start again."""
    if shutil.which("redis-server") is None:
        message = "needs redis-server on PATH (apt-get install redis-server)"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: every service must be up)", pytrace=False)
        pytest.skip(message)
    server = RedisServer(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class RedisServer:
    def __init__(self, port: int, folder: Path) -> None:
        self.port, self.folder = port, folder
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        options = {"port": str(self.port), "bind": "127.0.0.1", "save": "", "appendonly": "no"}
        self.process = subprocess.Popen(
            ["redis-server", *(w for k, v in options.items() for w in (f"--{k}", v))],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while self.keys() is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)  # polls a process starting, not a clock

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def keys(self) -> int | None:
        """The keys it holds; None while it does not answer."""
        found = subprocess.run(["redis-cli", "-p", str(self.port), "dbsize"], capture_output=True)
        return int(found.stdout) if found.stdout.strip().isdigit() else None


@pytest.mark.redis
async def test_while_redis_is_down_budgets_are_counted_here_and_redis_is_tried_again(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1_000 * MINUTE + 10.0]
    limiter = RateLimiter.from_url(own_redis.url, 2, clock=lambda: now[0])
    try:
        assert (await limiter.hit("k")).remaining == 1
        assert limiter.counts_in == "redis" and (own_redis.keys() or 0) > 0

        own_redis.stop()
        # Counted in this process from a full budget: the hit Redis holds is not known here.
        assert [(await limiter.hit("k")).remaining for _ in range(2)] == [1, 0]
        with pytest.raises(RateLimited):
            await limiter.hit("k")
        assert limiter.counts_in == "process (Redis unreachable)"
        assert "budgets are counted in this process" in caplog.text

        own_redis.start()  # empty: nothing saved
        await limiter.hit("other")
        assert own_redis.keys() == 0, "Redis was tried before the retry was due"
        now[0] += SHARED_RETRY_SECONDS
        assert (await limiter.hit("other")).remaining == 1
        assert limiter.counts_in == "redis" and (own_redis.keys() or 0) > 0
    finally:
        await limiter.close()


@pytest.mark.redis
async def test_a_health_check_finds_redis_back_before_the_retry_is_due(
    own_redis: RedisServer,
) -> None:
    limiter = RateLimiter.from_url(own_redis.url, 5, clock=lambda: 1_000 * MINUTE)
    try:
        own_redis.stop()
        assert await limiter.check_shared() == "process (Redis unreachable)"
        await limiter.hit("k")
        assert own_redis.process is None and limiter.counts_in == "process (Redis unreachable)"
        own_redis.start()
        assert await limiter.check_shared() == "redis"
        await limiter.hit("k")
        assert (own_redis.keys() or 0) > 0
    finally:
        await limiter.close()


async def test_a_redis_that_does_not_answer_is_waited_for_a_bounded_time() -> None:
    # A peer that accepts connections and never answers (a hung Redis, a firewall's drop).
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    limiter = RateLimiter.from_url(f"redis://127.0.0.1:{port}/0", 5)
    try:
        # One timeout, not one per retry of the client's (coredis retried twice: 3 s).
        with anyio.fail_after(2 * SHARED_TIMEOUT_SECONDS):
            budget = await limiter.hit("k")
        assert budget.remaining == 4
        assert limiter.counts_in == "process (Redis unreachable)"
        # A health check asks again, and waits as long.
        with anyio.fail_after(2 * SHARED_TIMEOUT_SECONDS):
            assert await limiter.check_shared() == "process (Redis unreachable)"
    finally:
        listener.close()
        await limiter.close()


async def test_the_api_answers_while_redis_cannot_be_reached(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with closed_port() as port:
        unreachable = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
        async with serving(unreachable) as (app, http):
            actor = await make_actor(app.state.casefolio.db, rate_limit=2)
            answers = [await http.get("/api/v1/roles", headers=actor.headers) for _ in range(3)]
            health = await http.get("/health")
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["1", "0", "0"]
    assert health.status_code == 200
    assert health.json()["rateLimits"] == "process (Redis unreachable)"
    assert "Redis for the rate limits cannot be reached" in caplog.text
