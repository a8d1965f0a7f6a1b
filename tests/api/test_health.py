"""`GET /health`: no token, 200 while the database answers, 503 when it cannot be reached."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import anyio
import httpx

from casefolio import __version__
from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.storage.base import BlobStore
from casefolio.storage.health import TTL_SECONDS, BlobStoreHealth
from tests.clocks import Seconds
from tests.factories import serving
from tests.servers import closed_port


async def test_health_needs_no_token_and_reports_the_database(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "version": __version__,
        "database": "ok",
        "rateLimits": "process",
        "blobStore": "ok",
    }


async def test_health_is_503_with_retry_after_when_the_database_is_unreachable(
    tmp_path: Path,
) -> None:
    # A PostgreSQL URL on a port nobody listens on: connections are refused at once.
    with closed_port() as port:
        closed = f"postgresql://postgres@127.0.0.1:{port}/casefolio"
        app = create_app(Settings(data_dir=tmp_path / "data", database_url=closed))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                health = await c.get("/health")
    assert health.status_code == 503
    assert health.headers["retry-after"] == "1"
    assert "database cannot be reached" in health.json()["detail"]


class CountingChecks:
    """The app's own blob store, counting how often it is asked whether it can serve."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.checks = 0

    async def check(self) -> None:
        self.checks += 1
        await self.store.check()


async def test_the_blob_store_is_asked_once_every_two_seconds_however_often_health_is_called(
    settings: Settings,
) -> None:
    async with serving(settings) as (app, client):
        state = app.state.casefolio
        clock, store = Seconds(), CountingChecks(state.blobs)
        state.blob_health = BlobStoreHealth(cast(BlobStore, store), clock=clock)

        async with anyio.create_task_group() as calls:
            for _ in range(20):
                calls.start_soon(client.get, "/health")
        assert store.checks == 1
        clock.advance(TTL_SECONDS - 0.1)
        assert (await client.get("/health")).json()["blobStore"] == "ok"
        assert store.checks == 1
        clock.advance(0.1)
        assert (await client.get("/health")).json()["blobStore"] == "ok"
        assert store.checks == 2
