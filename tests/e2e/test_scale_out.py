"""The scaled-out shape for real: two `casefolio serve` processes (one under uvicorn, one
under granian) sharing PostgreSQL, Redis and S3 (moto), and `casefolio serve --workers 2`
under each server.

Always runs on PostgreSQL (a database of its own, also when the suite runs on SQLite),
Redis database 14 and a fresh prefix on the run's moto server.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import psutil
import pytest

from casefolio.api.ratelimit import RateLimiter
from casefolio.config import Settings
from tests import services
from tests.conftest import PG_ADMIN_URL, _admin_execute
from tests.factories import wait_before_budget_sequence
from tests.s3 import endpoint, s3_env
from tests.servers import cli, init_token, running_server, server_env

REDIS_URL = services.redis_url(14)
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    admin = Settings(database_url=PG_ADMIN_URL or DEFAULT_PG_ADMIN_URL).effective_database_url
    name = f"casefolio_scale_{uuid.uuid4().hex[:10]}"
    _admin_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def shared_env(pg_url: str, tmp_path: Path) -> dict[str, str]:
    """What every process of the installation shares: database, Redis and S3 settings."""

    async def forget_budgets() -> None:
        # Token ids restart at 1 in the fresh database; old counters must not apply.
        limiter = RateLimiter.from_url(REDIS_URL, 50)
        await limiter.reset()
        await limiter.close()

    anyio.run(forget_budgets)
    env = server_env(tmp_path / "admin", pg_url, redis_url=REDIS_URL)
    return env | s3_env(endpoint())


def _node(shared: dict[str, str], tmp_path: Path, name: str) -> dict[str, str]:
    # Each process has a data folder of its own: with S3 it only holds staging files.
    return shared | {"CASEFOLIO_DATA_DIR": str(tmp_path / name)}


def test_two_servers_share_database_blobs_and_rate_limits(
    shared_env: dict[str, str], tmp_path: Path
) -> None:
    cli(shared_env, "migrate")  # once, before any server starts
    token = init_token(shared_env)
    limited = cli(
        shared_env, "tokens", "create", "--email", "op@example.com", "--name", "six",
        "--rate-limit", "6",
    ).strip()  # fmt: skip
    auth = {"X-API-Token": token}
    # One node under each ASGI server casefolio supports: a mixed fleet must work too.
    with (
        running_server(
            _node(shared_env, tmp_path, "a"), "--no-migrate", "--server", "uvicorn"
        ) as a,
        running_server(
            _node(shared_env, tmp_path, "b"), "--no-migrate", "--server", "granian"
        ) as b,
        httpx.Client(timeout=30) as http,
    ):
        project = http.post(
            f"{a.base_url}/api/v1/projects",
            json={"name": "Scaled", "settings": {"downloadViaApi": True}},
            headers=auth,
        )
        assert project.status_code == 201, project.text
        docs = f"/api/v1/projects/{project.json()['id']}/documents"

        body = bytes(range(256)) * 4096  # 1 MiB
        created = http.post(
            a.base_url + docs,
            content=body,
            params={"fileName": "bundle.pdf"},
            headers={**auth, "Content-Type": "application/pdf"},
        )
        assert created.status_code == 201, created.text
        doc = f"{docs}/{created.json()['id']}"

        read = http.get(b.base_url + doc, headers=auth)
        assert read.status_code == 200 and read.json()["currentVersion"]["size"] == len(body)
        ranged = http.get(b.base_url + doc + "/content", headers={**auth, "Range": "bytes=10-19"})
        assert ranged.status_code == 206 and ranged.content == body[10:20]

        replaced = http.post(
            b.base_url + doc + "/replace",
            content=b"second edition",
            params={"fileName": "bundle-v2.pdf"},
            headers={**auth, "Content-Type": "application/pdf"},
        )
        assert replaced.status_code == 201, replaced.text
        for server in (a, b):
            got = http.get(server.base_url + doc + "/content", headers=auth)
            assert got.status_code == 200 and got.content == b"second edition"
            assert got.headers["etag"] == f'"{hashlib.sha256(b"second edition").hexdigest()}"'
        # Neither process kept the bytes locally: both read them from S3.
        for name in ("a", "b"):
            assert not (tmp_path / name / "blobs").exists()

        deleted = http.delete(b.base_url + doc, headers=auth)
        assert deleted.status_code in (200, 204), deleted.text
        assert http.get(a.base_url + doc, headers=auth).status_code == 404

        # One budget of six requests, spent alternately on both servers.
        time.sleep(wait_before_budget_sequence())
        remaining = []
        for i in range(6):
            server = (a, b)[i % 2]
            answer = http.get(
                server.base_url + "/api/v1/projects", headers={"X-API-Token": limited}
            )
            assert answer.status_code == 200, answer.text
            remaining.append(int(answer.headers["ratelimit-remaining"]))
        assert remaining == [5, 4, 3, 2, 1, 0]
        seventh = http.get(b.base_url + "/api/v1/projects", headers={"X-API-Token": limited})
        assert seventh.status_code == 429
        assert int(seventh.headers["retry-after"]) >= 1
        eighth = http.get(a.base_url + "/api/v1/projects", headers={"X-API-Token": limited})
        assert eighth.status_code == 429


@pytest.mark.parametrize("server_kind", ["uvicorn", "granian"])
def test_serve_with_two_workers_answers(
    shared_env: dict[str, str], tmp_path: Path, server_kind: str
) -> None:
    token = init_token(shared_env)  # init migrates the fresh database
    env = _node(shared_env, tmp_path, "w")
    with (
        running_server(env, "--workers", "2", "--no-migrate", "--server", server_kind) as server,
        httpx.Client() as http,
    ):
        workers = psutil.Process(server.pid).children(recursive=True)
        assert len(workers) >= 2, [p.name() for p in workers]  # one process per worker
        answers = [
            http.get(f"{server.base_url}/api/v1/users", headers={"X-API-Token": token})
            for _ in range(10)
        ]
        assert {r.status_code for r in answers} == {200}
        # The rate-limit budget lives in Redis, so both workers count against one budget.
        assert [int(r.headers["ratelimit-remaining"]) for r in answers] == list(range(49, 39, -1))


def _tcp_sockets(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on local `port` in `state` (0A: listening, 01: connected)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.add(fields[9])
    return found


def _sockets_held(pid: int) -> set[str]:
    held: set[str] = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            held.add(target.removeprefix("socket:[").removesuffix("]"))
    return held


def _listeners_by_worker(server_pid: int, port: int, timeout: float = 60) -> dict[int, str]:
    """Wait until each of the two workers listens; return its listening socket's inode."""
    deadline = time.monotonic() + timeout
    while True:
        listening = _tcp_sockets(port, "0A")
        by_worker = {
            child.pid: inode
            for child in psutil.Process(server_pid).children()
            for inode in _sockets_held(child.pid) & listening
        }
        if len(by_worker) == 2 and len(listening) == 2:
            return by_worker
        assert time.monotonic() < deadline, (listening, by_worker)
        time.sleep(0.2)


def test_uvicorn_workers_listen_on_sockets_of_their_own(
    shared_env: dict[str, str], tmp_path: Path
) -> None:
    """Sharing one listening socket, the worker awake first accepts every waiting connection,
    and with keep-alive clients may serve them all while the other idles. With a socket
    each (SO_REUSEPORT) the kernel spreads connections over the workers."""
    token = init_token(shared_env)
    env = _node(shared_env, tmp_path, "w")
    with running_server(env, "--workers", "2", "--no-migrate", "--server", "uvicorn") as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        listeners = _listeners_by_worker(server.pid, port)
        assert len(set(listeners.values())) == 2  # not one socket shared
        clients = [httpx.Client(base_url=server.base_url) for _ in range(40)]
        try:
            for client in clients:  # 40 connections, held open
                answer = client.get("/api/v1/users", headers={"X-API-Token": token})
                assert answer.status_code == 200
            connected = _tcp_sockets(port, "01")
            served = [len(_sockets_held(pid) & connected) for pid in listeners]
            assert sum(served) == 40 and min(served) > 0, served  # both workers have some
        finally:
            for client in clients:
                client.close()
        # A worker that dies takes its socket with it; its replacement opens a new one, so
        # no connection waits on a socket that nobody accepts from.
        victim, victim_socket = next(iter(listeners.items()))
        dying = psutil.Process(victim)
        dying.kill()
        # Gone once uvicorn reaps it: at its next health check, or, if the kill caught a
        # health-check ping in flight, when that ping times out (60 s, cli/server.py).
        dying.wait(timeout=90)
        after = _listeners_by_worker(server.pid, port, timeout=90)
        assert victim not in after and victim_socket not in after.values()
        with httpx.Client(base_url=server.base_url) as http:
            answer = http.get("/api/v1/users", headers={"X-API-Token": token})
            assert answer.status_code == 200
