"""Several casefolio commands started at once on a fresh data folder and database: the
migration lock lets one create the schema while the others wait, then find it current."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from casefolio.config import Settings
from casefolio.db import migrate
from tests.servers import CASEFOLIO, running_server, server_env

pytestmark = pytest.mark.slow


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CASEFOLIO, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def test_four_migrate_commands_at_once_all_succeed(fresh_database_url: str, tmp_path: Path) -> None:
    env = server_env(tmp_path / "data", fresh_database_url)
    # Started together, before any of them has had time to create a table.
    results = [_finish(p) for p in [_start(env, "migrate") for _ in range(4)]]

    for code, out, err in results:
        assert code == 0, err
        assert "Database is up to date (schema " in out
        assert "already exists" not in err
    # The schema is whole: a command that needs every table works.
    check = subprocess.run(
        [CASEFOLIO, "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stderr


def test_serve_and_init_at_once_both_succeed(fresh_database_url: str, tmp_path: Path) -> None:
    env = server_env(tmp_path / "data", fresh_database_url)
    init = _start(env, "init", "--email", "op@example.com", "--name", "Operator")
    with running_server(env) as server:
        code, out, err = _finish(init)
        assert code == 0, err
        assert "already exists" not in err
        token = next(line.strip() for line in out.splitlines() if line.strip().startswith("cf_"))
        me = httpx.get(f"{server.base_url}/api/v1/users", headers={"X-API-Token": token})
    assert me.status_code == 200, me.text
    assert [u["email"] for u in me.json()] == ["op@example.com"]


def _until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.1)


def _flock_waiters(path: Path) -> int:
    """Processes blocked on a flock of `path` (from /proc/locks, where waiters show `->`)."""
    inode = os.stat(path).st_ino
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if "->" in line and f":{inode} " in line)


@asynccontextmanager
async def _held_lock(url: str) -> AsyncIterator[Callable[[], bool]]:
    """Hold the migration lock as a migrating process would; yield "is someone waiting?"."""
    path = migrate.lock_file(url)
    if path is not None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield lambda: _flock_waiters(path) > 0
        finally:
            os.close(fd)
        return
    engine = create_async_engine(url)
    async with engine.connect() as holder:
        await holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": migrate.ADVISORY_LOCK})
        await holder.commit()

        def waiting() -> bool:
            async def count() -> int:
                probe = create_async_engine(url)
                async with probe.connect() as conn:
                    found = await conn.scalar(
                        text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND NOT granted AND objid = :k"
                        ),
                        {"k": migrate.ADVISORY_LOCK},
                    )
                await probe.dispose()
                return int(found or 0)

            return anyio.run(count) > 0

        yield waiting
    await engine.dispose()


async def _has_schema(url: str) -> bool:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        found = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, "alembic_version"))
    await engine.dispose()
    return bool(found)


async def test_migrate_waits_for_the_lock_then_finds_nothing_to_do(
    fresh_database_url: str, tmp_path: Path
) -> None:
    url = Settings(database_url=fresh_database_url).effective_database_url
    env = server_env(tmp_path / "data", fresh_database_url)
    async with _held_lock(url) as someone_waits:
        waiter = _start(env, "migrate")
        await anyio.to_thread.run_sync(
            _until, lambda: someone_waits() or waiter.poll() is not None, "migrate to block"
        )
        # Blocked before touching the schema (not finished without waiting).
        assert waiter.poll() is None
        assert not await _has_schema(url)
    code, out, err = await anyio.to_thread.run_sync(_finish, waiter)
    assert code == 0, err
    assert "Database is up to date (schema " in out
    assert await _has_schema(url)
