"""A request alone in the process runs its durable steps on the event loop; with others in
flight, or outside a request, they keep their worker thread (fastpath/inflight.py)."""

from __future__ import annotations

import threading

import anyio
import httpx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from casefolio.config import Settings
from casefolio.fastpath import inflight
from casefolio.fastpath.inflight import RequestsInFlight
from tests.factories import Actor


async def test_only_a_request_with_no_other_in_flight_is_alone() -> None:
    seen: dict[str, bool] = {}
    first_in = anyio.Event()
    release = anyio.Event()

    async def endpoint(request: Request) -> PlainTextResponse:
        name = request.query_params["name"]
        seen[name] = inflight.alone()
        if name == "first":
            first_in.set()
            await release.wait()
        return PlainTextResponse(name)

    app = RequestsInFlight(FastAPI(routes=[Route("/", endpoint)]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert not inflight.alone()  # not a request
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.get, "/?name=first")
            await first_in.wait()
            assert (await client.get("/?name=second")).text == "second"
            release.set()
        assert (await client.get("/?name=third")).text == "third"
    assert seen == {"first": True, "second": False, "third": True}
    assert not inflight.alone()


async def test_steps_run_on_the_loop_only_for_a_request_alone() -> None:
    threads: list[int] = []

    def step() -> int:
        threads.append(threading.get_ident())
        return len(threads)

    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(await inflight.run_blocking(step)))

    app = RequestsInFlight(FastAPI(routes=[Route("/", endpoint)]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/")).text == "1"
    assert await inflight.run_blocking(step) == 2  # outside a request: in a thread
    loop_thread = threading.get_ident()
    assert threads[0] == loop_thread and threads[1] != loop_thread


async def test_an_upload_alone_makes_its_blob_and_log_durable_on_the_loop_on_sqlite(
    settings: Settings, operator: Actor, app: FastAPI, client: httpx.AsyncClient
) -> None:
    fsyncs: list[tuple[str, int]] = []
    state = app.state.casefolio
    put_sync = state.blobs._put_sync

    def put(spooled: object) -> None:
        fsyncs.append(("blob", threading.get_ident()))
        put_sync(spooled)

    state.blobs._put_sync = put
    wal_sync = None
    if settings.is_sqlite:
        async with state.db.engine.connect() as conn:
            wal_sync = (await conn.get_raw_connection()).driver_connection._wal_sync
        assert wal_sync is not None
        sync = wal_sync.sync

        def log_sync() -> None:
            fsyncs.append(("log", threading.get_ident()))
            sync()

        wal_sync.sync = log_sync
    h = operator.headers
    project = (await client.post("/api/v1/projects", json={"name": "P"}, headers=h)).json()["id"]
    fsyncs.clear()
    uploaded = await client.post(
        f"/api/v1/projects/{project}/documents?fileName=a.txt", content=b"alone", headers=h
    )
    assert uploaded.status_code == 201, uploaded.text
    loop_thread = threading.get_ident()
    kinds = [kind for kind, _ in fsyncs]
    assert kinds[0] == "blob" and (kinds.count("log") >= 1) == settings.is_sqlite
    on_loop = {kind: thread == loop_thread for kind, thread in fsyncs}
    # PostgreSQL stores the blob while the upload's statements run: that put keeps its thread.
    assert on_loop == ({"blob": True, "log": True} if settings.is_sqlite else {"blob": False})
    document = uploaded.json()["id"]
    got = await client.get(f"/api/v1/projects/{project}/documents/{document}", headers=h)
    assert got.status_code == 200 and got.json()["title"] == "a.txt"
