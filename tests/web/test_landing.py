"""`GET /`: a page that says what this is and where the API, its docs and health check are."""

from __future__ import annotations

import re

import httpx

from casefolio import __version__


async def test_root_is_a_landing_page_linking_docs_schema_and_health(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f"Version {__version__}" in page.text
    links = set(re.findall(r'href="([^"]+)"', page.text))
    assert {"/docs", "/api/v1/openapi.json", "/health"} <= links
    for link in links:
        followed = await client.get(link)
        # /api/v3 is linked as the dialect's root: it asks for a token, as it says.
        assert followed.status_code == (401 if link == "/api/v3" else 200), link


async def test_landing_page_answers_head_without_a_body(client: httpx.AsyncClient) -> None:
    head = await client.head("/")
    assert head.status_code == 200 and head.content == b""
