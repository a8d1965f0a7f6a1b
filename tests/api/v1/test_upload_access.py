"""Upload access is checked before the body streams in and again when the document is filed;
a recent yes for the first check is remembered for a moment (api/grants.py)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.api.v1.conftest import Matter, upload
from tests.factories import Actor


async def _titles(client: httpx.AsyncClient, matter: Matter, operator: Actor) -> list[str]:
    listed = await client.get(matter.url("/documents"), headers=operator.headers)
    assert listed.status_code == 200, listed.text
    return [d["title"] for d in listed.json()]


async def test_an_upload_right_after_losing_access_is_refused_by_the_filing_check(
    app: FastAPI, client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    assert (await upload(client, matter, b"first", "first.pdf")).status_code == 201
    removed = await client.delete(
        matter.url(f"/users/{matter.writer.email}"), headers=operator.headers
    )
    assert removed.status_code in (200, 204), removed.text
    # The early check still remembers the yes...
    assert app.state.casefolio.upload_grants.allows(matter.writer.user_id, matter.id)

    refused = await upload(client, matter, b"second", "second.pdf")

    # ...so the filing transaction's own check is what refuses, and nothing is filed.
    assert refused.status_code == 404, refused.text
    assert refused.json()["detail"] == f"Project {matter.id} not found."
    assert await _titles(client, matter, operator) == ["first.pdf"]
    staging = app.state.casefolio.blobs.staging_dir
    assert list(staging.iterdir()) == []


async def test_a_refusal_is_not_remembered(
    client: httpx.AsyncClient, matter: Matter, operator: Actor
) -> None:
    outsider = matter.outsider
    assert (await upload(client, matter, b"x", actor=outsider)).status_code == 404
    granted = await client.put(
        matter.url(f"/users/{outsider.email}"),
        json={"role": "Read Write"},
        headers=operator.headers,
    )
    assert granted.status_code == 200, granted.text

    accepted = await upload(client, matter, b"x", "now.pdf", actor=outsider)

    assert accepted.status_code == 201, accepted.text
    assert await _titles(client, matter, operator) == ["now.pdf"]
