"""`GET /health`: no token, 200 while the database answers."""

from __future__ import annotations

import httpx

from casefolio import __version__


async def test_health_needs_no_token_and_reports_the_database(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "version": __version__, "database": "ok"}
