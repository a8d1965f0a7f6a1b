"""Bytes lost from the blob store outside casefolio: a download says so, sends nothing and
is not audited as a download."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from casefolio.db.engine import Database
from tests.api.snapshots import snapshot
from tests.api.v1.conftest import Matter, upload


async def test_a_version_whose_bytes_are_gone_is_a_500_that_says_so(
    client: httpx.AsyncClient,
    matter: Matter,
    app: FastAPI,
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    made = await upload(client, matter, b"%PDF lost", "lost.pdf")
    assert made.status_code == 201, made.text
    document = made.json()
    sha256 = document["currentVersion"]["sha256"]
    blobs = app.state.casefolio.blobs
    path = blobs.local_path(sha256)
    assert path is not None
    path.unlink()
    before = await snapshot(db)

    answer = await client.get(
        matter.url(f"/documents/{document['id']}/content"), headers=matter.reader.headers
    )
    v3 = await client.get(
        f"/api/v3/attachments/{document['currentVersion']['id']}/content",
        headers=matter.reader.headers,
    )

    assert answer.status_code == 500
    assert "missing from the blob store; nothing was sent" in answer.json()["detail"]
    assert v3.status_code == 500
    assert "missing from the blob store" in v3.json()["message"]
    assert await snapshot(db) == before  # no content.downloaded entry
    assert sha256 in caplog.text
