"""An attachment over the configured maximum is refused as OpenProject refuses it (422)."""

from __future__ import annotations

import json

import httpx
import pytest

from casefolio.config import Settings
from tests.api.v3.conftest import Matter, add_attachment_v3, basic, upload_v1

LIMIT = 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_upload_bytes": LIMIT})


async def test_too_large_attachment_is_422_and_nothing_is_added(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    response = await add_attachment_v3(client, int(doc["id"]), matter.writer, content=b"x" * 4096)
    assert response.status_code == 422, response.text
    body = response.json()
    assert (
        body["errorIdentifier"] == "urn:openproject-org:api:v3:errors:PropertyConstraintViolation"
    )
    assert body["message"] == f"File is too large (maximum size is {LIMIT} Bytes)."
    listed = await client.get(
        f"/api/v3/documents/{doc['id']}/attachments", headers=basic(matter.reader)
    )
    assert listed.json()["total"] == 1


async def test_too_large_upload_names_file_size_on_either_route(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    """The 422 names `fileSize` in `_embedded.details`, as OpenProject's does (clients show
    it beside the file), whether the upload has a container or not; nothing is added."""
    doc = await upload_v1(client, matter.id, matter.writer)
    for url in (f"/api/v3/documents/{doc['id']}/attachments", "/api/v3/attachments"):
        response = await client.post(
            url,
            files={
                "metadata": (None, json.dumps({"fileName": "big.bin"}), "application/json"),
                "file": ("big.bin", b"x" * (LIMIT + 1), "application/octet-stream"),
            },
            headers=basic(matter.writer),
        )
        assert response.status_code == 422, (url, response.text)
        assert response.json()["_embedded"]["details"] == {"attribute": "fileSize"}, url
    listed = await client.get(
        f"/api/v3/documents/{doc['id']}/attachments", headers=basic(matter.reader)
    )
    assert listed.json()["total"] == 1
