"""The server's app factory: what server processes do beyond `create_app`."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx
import pytest

from casefolio.app import app_from_env


async def test_server_processes_hide_startup_objects_from_the_garbage_collector(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEFOLIO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CASEFOLIO_DATABASE_URL", database_url)
    app = app_from_env()
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        # Modules, routes, models: full collections no longer walk them on every run.
        assert gc.get_freeze_count() > 10_000
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/api/v1/openapi.json")).status_code == 200
    assert gc.get_freeze_count() == 0  # collectable again once the app has stopped
