"""The read fast path (fastpath/) and the plain read session answer every read alike:
status, headers and body, for the document read and the document lists, found or refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.db.engine import Database
from tests.factories import Actor, make_actor

#: Headers whose values differ between two apps' limiters (each counts its own requests).
VARYING = {"ratelimit-remaining", "ratelimit-reset", "date"}


@pytest.fixture
async def other_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with the other read model, on the same database."""
    flipped = settings.model_copy(update={"fast_reads": not settings.fast_reads})
    application = create_app(flipped)
    async with application.router.lifespan_context(application):
        yield application


def _comparable(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in VARYING}
    return response.status_code, response.content, headers


async def test_both_read_models_answer_every_read_alike(
    app: FastAPI, other_app: FastAPI, client: httpx.AsyncClient, db: Database, operator: Actor
) -> None:
    assert {a.state.casefolio.reads.fast for a in (app, other_app)} == {True, False}
    h = operator.headers
    project = (await client.post("/api/v1/projects", json={"name": "Doe"}, headers=h)).json()["id"]
    other = (await client.post("/api/v1/projects", json={"name": "Roe"}, headers=h)).json()["id"]
    base = f"/api/v1/projects/{project}"
    folder = (await client.post(f"{base}/folders", json={"name": "Pleadings"}, headers=h)).json()
    await client.post(f"{base}/fields", json={"name": "Court", "type": "text"}, headers=h)
    ids = []
    for i in range(3):
        metadata = {"fields": {"Court": f"Court {i}"}} if i != 1 else {"folderId": folder["id"]}
        uploaded = await client.post(
            f"{base}/documents",
            files={"file": (f"d{i}.pdf", b"%PDF " + bytes([i])), "metadata": json.dumps(metadata)},
            headers=h,
        )
        assert uploaded.status_code == 201, uploaded.text
        ids.append(uploaded.json()["id"])
    # In the trash: both read models answer it 404 and leave it out of every list.
    trashed = await client.post(
        f"{base}/documents",
        files={
            "file": ("t.pdf", b"%PDF trashed"),
            "metadata": json.dumps({"folderId": folder["id"]}),
        },
        headers=h,
    )
    assert (
        await client.delete(f"{base}/documents/{trashed.json()['id']}", headers=h)
    ).status_code == 204
    stranger = await make_actor(db, email="stranger@example.com")
    since = (await client.get(f"{base}/documents", headers=h)).json()[1]["updatedAt"]
    reads = [
        (f"{base}/documents/{ids[0]}", h),
        (f"{base}/documents/{ids[1]}", h),
        (f"{base}/documents/999999", h),
        (f"{base}/documents/{trashed.json()['id']}", h),
        (f"/api/v1/projects/{other}/documents/{ids[0]}", h),
        (f"{base}/documents/{ids[0]}", stranger.headers),
        (f"{base}/documents", h),
        (f"{base}/documents?limit=2", h),
        (f"{base}/documents?afterDate={since}", h),
        (f"{base}/documents/folder/{folder['id']}", h),
        (f"{base}/documents/folder/999999", h),
        (f"/api/v1/projects/{other}/documents", h),
        ("/api/v1/projects/999999/documents", h),
        (f"{base}/documents", stranger.headers),
    ]
    transports = [httpx.ASGITransport(app=a) for a in (app, other_app)]
    async with (
        httpx.AsyncClient(transport=transports[0], base_url="http://test") as first,
        httpx.AsyncClient(transport=transports[1], base_url="http://test") as second,
    ):
        for url, headers in reads:
            for method in ("GET", "HEAD"):
                one = await first.request(method, url, headers=headers)
                two = await second.request(method, url, headers=headers)
                assert _comparable(one) == _comparable(two), f"{method} {url}"
        statuses = {
            url: (await first.get(url, headers=headers)).status_code for url, headers in reads
        }
        assert sorted(set(statuses.values())) == [200, 404]  # both kinds of answer were compared
        assert statuses[f"{base}/documents/{trashed.json()['id']}"] == 404
        listed = (await first.get(f"{base}/documents/folder/{folder['id']}", headers=h)).json()
        assert [d["id"] for d in listed] == [ids[1]]
