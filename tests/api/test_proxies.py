"""The client address behind trusted proxies (CASEFOLIO_TRUSTED_PROXIES), as the audit trail
records it for an API call: what the proxies appended to X-Forwarded-For, never what the
client wrote there itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from casefolio.app import create_app
from casefolio.config import Settings
from tests.factories import make_actor, switch_api


@pytest.fixture
async def proxied_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]}))
    async with application.router.lifespan_context(application):
        await switch_api(application.state.casefolio.db, on=True)
        yield application


async def _client_recorded(app: FastAPI, peer: str, forwarded: str) -> str:
    """Create a project from `peer` with X-Forwarded-For `forwarded`; return the client its
    audit entry names."""
    operator = await make_actor(app.state.casefolio.db, operator=True)
    transport = httpx.ASGITransport(app=app, client=(peer, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        made = await http.post(
            "/api/v1/projects",
            json={"name": "Smith v Jones"},
            headers={**operator.headers, "X-Forwarded-For": forwarded},
        )
        assert made.status_code == 201, made.text
        audit = await http.get(
            "/api/v1/audit",
            params={"action": "project.created", "targetId": made.json()["id"]},
            headers=operator.headers,
        )
    [entry] = audit.json()
    return str(entry["client"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "recorded"),
    [
        # The proxy appended the browser's address to what the browser sent.
        ("10.0.0.5", "198.51.100.1, 203.0.113.7", "203.0.113.7"),
        # Two proxies: the second appended the first's address, which is skipped.
        ("10.0.0.5", "203.0.113.7, 10.0.0.9", "203.0.113.7"),
        # A hop that is no address (or is too long to be one) is not believed: the peer.
        ("10.0.0.5", "x" * 300, "10.0.0.5"),
        ("10.0.0.5", "fe80::1%" + "e" * 300, "10.0.0.5"),
        # Not a trusted proxy: its header is not believed.
        ("198.51.100.9", "203.0.113.7", "198.51.100.9"),
    ],
)
async def test_the_audit_trail_names_the_address_the_proxies_saw(
    proxied_app: FastAPI, peer: str, forwarded: str, recorded: str
) -> None:
    assert await _client_recorded(proxied_app, peer, forwarded) == recorded
