"""PostgreSQL that does not answer: a connection gone silent, a statement or a commit that
takes too long, a server that cannot be reached.

Each request waits at most CASEFOLIO_DATABASE_STATEMENT_TIMEOUT_SECONDS for a statement, then
answers 503 with Retry-After and a detail that says whether anything was changed; the
connection is discarded and the next request gets a fresh one. The app reaches PostgreSQL
through a relay (`Relay`) that can silence the connections it carries, as a failover the
client never heard of does (a half-open connection). Always runs on PostgreSQL, on a
database of its own (tests/db/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from functools import partial

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from typer.testing import CliRunner

from casefolio.app import create_app
from casefolio.cli import app as cli
from casefolio.config import Settings
from tests.db.conftest import hold_at_once
from tests.factories import Actor, make_actor, switch_api

TIMEOUT = 0.5
#: Bounds each test's wait for an answer, so that a regression fails instead of hanging.
HANG_GUARD = 30


class Relay:
    """A TCP relay to PostgreSQL. `silence()` makes the connections it carries drop every
    byte from then on, without closing them; connections opened later are relayed as
    usual (a failover: the old server is gone without a word, the address answers anew).
    `refuse()` stops accepting connections, as a server that is down."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._silenced: set[asyncio.Event] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def silence(self) -> None:
        for silenced in self._silenced:
            silenced.set()

    async def refuse(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        silenced = asyncio.Event()
        self._silenced.add(silenced)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pipe = asyncio.get_running_loop().create_task(self._pipe(source, sink, silenced))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, silenced: asyncio.Event
    ) -> None:
        try:
            while data := await source.read(65536):
                if not silenced.is_set():
                    sink.write(data)
                    await sink.drain()
        except OSError:
            pass
        finally:
            # One side closed: so does the other (never a silenced one: it stays half-open).
            if not silenced.is_set():
                sink.close()


@pytest.fixture
async def relay(pg_settings: Settings) -> AsyncIterator[Relay]:
    url = make_url(pg_settings.effective_database_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    await relay.start()
    yield relay
    await relay.close()


@pytest.fixture
async def app(pg_settings: Settings, relay: Relay) -> AsyncIterator[FastAPI]:
    url = make_url(pg_settings.effective_database_url).set(host="127.0.0.1", port=relay.port)
    settings = pg_settings.model_copy(
        update={
            "database_url": url.render_as_string(hide_password=False),
            "database_statement_timeout_seconds": TIMEOUT,
        }
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await switch_api(application.state.casefolio.db, on=True)
        yield application


@pytest.fixture
async def operator(app: FastAPI) -> Actor:
    return await make_actor(app.state.casefolio.db, operator=True)


@pytest.fixture
async def client(app: FastAPI, operator: Actor) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t/api/v1", headers=operator.headers
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def holding(pg_settings: Settings, lock: str) -> AsyncIterator[AsyncConnection]:
    """Run `lock` in a transaction of another connection, held until the block ends."""
    engine = create_async_engine(pg_settings.effective_database_url)
    try:
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text(lock))
            yield conn
    finally:
        await engine.dispose()


def assert_unavailable(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert detail in response.json()["detail"], response.json()


async def a_document_and_a_full_pool(client: httpx.AsyncClient, app: FastAPI) -> str:
    """File a document, and leave 4 connections in the pool; return the document's path."""
    project = (await client.post("/projects", json={"name": "Doe v Roe"})).json()["id"]
    uploaded = await client.post(
        f"/projects/{project}/documents", params={"fileName": "a.txt"}, content=b"alpha"
    )
    assert uploaded.status_code == 201, uploaded.text
    db = app.state.casefolio.db
    await hold_at_once(db, 4)
    assert db.engine.sync_engine.pool.checkedin() == 4
    return f"/projects/{project}/documents/{uploaded.json()['id']}"


async def test_a_silent_connection_answers_503_then_the_api_recovers(
    client: httpx.AsyncClient, relay: Relay, app: FastAPI
) -> None:
    document = await a_document_and_a_full_pool(client, app)

    relay.silence()  # every pooled connection is now half-open
    with anyio.fail_after(HANG_GUARD):
        silent = await client.get(document)
    assert_unavailable(silent, f"did not answer within {TIMEOUT:g} seconds; nothing was changed")

    # Every connection pooled before the timeout was discarded with it: no second 503.
    with anyio.fail_after(HANG_GUARD):
        for _ in range(3):
            again = await client.get(document)
            assert again.status_code == 200, again.text
            assert again.json()["title"] == "a.txt"


async def test_concurrent_reads_on_silent_connections_are_answered_not_held(
    client: httpx.AsyncClient, relay: Relay, app: FastAPI
) -> None:
    """Document reads arriving together share round trips (fastpath/batching.py); one stuck on a
    silent connection must not hold the others beyond the timeout."""
    document = await a_document_and_a_full_pool(client, app)
    relay.silence()
    answers: list[httpx.Response] = []

    async def read() -> None:
        answers.append(await client.get(document))

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tasks:
            for _ in range(8):
                tasks.start_soon(read)
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 503}, [answer.text for answer in answers]
    assert 503 in statuses
    for answer in answers:
        if answer.status_code == 503:
            assert_unavailable(answer, "did not answer within")
        else:
            assert answer.json()["title"] == "a.txt"
    with anyio.fail_after(HANG_GUARD):
        assert (await client.get(document)).status_code == 200


async def test_a_write_whose_statement_times_out_changes_nothing(
    client: httpx.AsyncClient, pg_settings: Settings
) -> None:
    async with holding(pg_settings, "LOCK TABLE projects IN ACCESS EXCLUSIVE MODE"):
        with anyio.fail_after(HANG_GUARD):
            blocked = await client.post("/projects", json={"name": "Blocked v Waiting"})
        assert_unavailable(blocked, "nothing was changed")

    listed = await client.get("/projects")
    assert "Blocked v Waiting" not in [project["name"] for project in listed.json()]
    retried = await client.post("/projects", json={"name": "Blocked v Waiting"})
    assert retried.status_code == 201, retried.text


async def test_a_commit_that_times_out_says_the_outcome_is_unknown(
    client: httpx.AsyncClient, pg_settings: Settings
) -> None:
    """A deferred constraint trigger runs at COMMIT: one that sleeps makes the commit
    outlast the timeout. The server may have saved the change or not; the answer says so."""
    engine = create_async_engine(pg_settings.effective_database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$"
            )
        )
        await conn.execute(
            text(
                "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON projects "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
            )
        )
    await engine.dispose()

    with anyio.fail_after(HANG_GUARD):
        slow = await client.post("/projects", json={"name": "Slow v Commit"})
    assert_unavailable(slow, "may or may not have been saved")


async def test_a_server_that_cannot_be_reached_answers_503(
    client: httpx.AsyncClient, relay: Relay, app: FastAPI
) -> None:
    assert (await client.get("/projects")).status_code == 200
    await relay.refuse()
    await app.state.casefolio.db.engine.dispose()  # no pooled connection to fall back on
    with anyio.fail_after(HANG_GUARD):
        down = await client.get("/projects")
    assert_unavailable(down, "cannot be reached; nothing was changed")


async def test_a_command_whose_statement_times_out_is_a_red_line_and_exit_code_1(
    pg_settings: Settings,
) -> None:
    env = {
        "CASEFOLIO_DATA_DIR": str(pg_settings.data_dir),
        "CASEFOLIO_DATABASE_URL": pg_settings.effective_database_url,
        "CASEFOLIO_DATABASE_STATEMENT_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    create = partial(
        CliRunner().invoke, cli, ["users", "create", "--email", "a@example.com", "--name", "A"]
    )
    async with holding(pg_settings, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"):
        with anyio.fail_after(HANG_GUARD):
            # In a thread: the command runs an event loop of its own.
            blocked = await anyio.to_thread.run_sync(partial(create, env=env))
    assert blocked.exit_code == 1, blocked.output
    assert "did not answer within 0.5 seconds; nothing was changed" in blocked.output
    created = await anyio.to_thread.run_sync(partial(create, env=env))
    assert created.exit_code == 0, created.output
