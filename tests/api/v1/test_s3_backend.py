"""The v1 document flow with blobs in S3 (a real moto server), through the real app."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from casefolio.config import Settings
from casefolio.db.types import utcnow
from casefolio.domain import gc, purge
from casefolio.storage import S3BlobStore
from tests.api.v1.conftest import Matter, upload
from tests.s3 import s3_endpoint, s3_settings

__all__ = ["s3_endpoint"]


@pytest.fixture
def settings(settings: Settings, s3_endpoint: str) -> Settings:
    """The usual test settings, with blobs on a fresh prefix of the moto server."""
    return s3_settings(settings, s3_endpoint)


async def _blob_shas(app: FastAPI) -> set[str]:
    return {sha async for sha, _ in app.state.casefolio.blobs.list()}


async def test_upload_replace_and_ranged_download_go_through_s3(
    client: httpx.AsyncClient, matter: Matter, app: FastAPI
) -> None:
    assert isinstance(app.state.casefolio.blobs, S3BlobStore)
    first = bytes(range(256)) * 64
    created = await upload(client, matter, first, "ledger.pdf")
    assert created.status_code == 201, created.text
    doc = created.json()
    sha1 = hashlib.sha256(first).hexdigest()
    assert doc["currentVersion"]["sha256"] == sha1
    assert await _blob_shas(app) == {sha1}
    # Nothing lands in the local blob folder: S3 is the store, the data dir only stages.
    assert not (app.state.casefolio.settings.blob_dir).exists()

    url = matter.url(f"/documents/{doc['id']}/content")
    full = await client.get(url, headers=matter.reader.headers)
    assert full.status_code == 200 and full.content == first
    assert full.headers["etag"] == f'"{sha1}"'
    part = await client.get(url, headers={**matter.reader.headers, "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == first[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(first)}"
    tail = await client.get(url, headers={**matter.reader.headers, "Range": "bytes=-7"})
    assert tail.status_code == 206 and tail.content == first[-7:]

    second = b"amended ledger " * 1000
    replaced = await client.post(
        matter.url(f"/documents/{doc['id']}/replace"),
        content=second,
        params={"fileName": "ledger-v2.pdf"},
        headers={**matter.writer.headers, "Content-Type": "application/pdf"},
    )
    assert replaced.status_code == 201, replaced.text
    assert replaced.json()["currentVersion"]["number"] == 2
    assert (await client.get(url, headers=matter.reader.headers)).content == second
    versions = (
        await client.get(
            matter.url(f"/documents/{doc['id']}/versions"), headers=matter.reader.headers
        )
    ).json()
    v1 = next(v for v in versions if v["number"] == 1)
    old = await client.get(
        matter.url(f"/documents/{doc['id']}/versions/{v1['id']}/content"),
        headers={**matter.reader.headers, "Range": "bytes=0-9"},
    )
    assert old.status_code == 206 and old.content == first[:10]


async def test_large_upload_uses_multipart_and_streams_back(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    # Over the 8 MiB part size, so obstore uploads it in parts.
    body = hashlib.sha256(b"seed").digest() * (9 * 1024 * 1024 // 32 + 5)
    created = await upload(client, matter, body, "scan.tiff")
    assert created.status_code == 201, created.text
    url = matter.url(f"/documents/{created.json()['id']}/content")
    got = await client.get(url, headers=matter.reader.headers)
    assert (
        got.status_code == 200
        and hashlib.sha256(got.content).digest() == hashlib.sha256(body).digest()
    )
    middle = await client.get(
        url, headers={**matter.reader.headers, "Range": "bytes=8388600-8388700"}
    )
    assert middle.status_code == 206 and middle.content == body[8388600:8388701]


async def test_purged_document_leaves_a_young_orphan_that_gc_removes(
    client: httpx.AsyncClient, matter: Matter, app: FastAPI
) -> None:
    keep = (await upload(client, matter, b"keep me", "keep.pdf")).json()
    gone = (await upload(client, matter, b"delete me", "gone.pdf")).json()
    deleted = await client.delete(
        matter.url(f"/documents/{gone['id']}"), headers=matter.admin.headers
    )
    assert deleted.status_code in (200, 204), deleted.text
    state = app.state.casefolio
    # In the trash, its bytes are still referenced: gc keeps them.
    trashed = await gc.collect(state.db, state.blobs, grace=timedelta(0))
    assert trashed.blobs == [] and len(await _blob_shas(app)) == 2
    # The purge removes the rows; bytes modified within its grace are left to gc.
    purged = await purge.purge_expired(state.db, state.blobs, now=utcnow(), days=0)
    assert purged.purged == [int(gone["id"])] and purged.blobs_left_to_gc == 1
    young = await gc.collect(state.db, state.blobs, grace=timedelta(minutes=60))
    assert young.blobs == [] and len(await _blob_shas(app)) == 2
    report = await gc.collect(state.db, state.blobs, grace=timedelta(0))
    assert [b.name for b in report.blobs] == [gone["currentVersion"]["sha256"]]
    assert await _blob_shas(app) == {keep["currentVersion"]["sha256"]}
    still = await client.get(
        matter.url(f"/documents/{keep['id']}/content"), headers=matter.reader.headers
    )
    assert still.content == b"keep me"


async def test_any_range_of_an_empty_file_in_s3_is_416(
    client: httpx.AsyncClient, matter: Matter
) -> None:
    created = await upload(client, matter, b"", "empty.txt")
    assert created.status_code == 201, created.text
    url = matter.url(f"/documents/{created.json()['id']}/content")
    for header in ("bytes=-10", "bytes=0-", "bytes=0-0"):
        answer = await client.get(url, headers={**matter.reader.headers, "Range": header})
        assert answer.status_code == 416, (header, answer.headers)
        assert answer.headers["content-range"] == "bytes */0"
    whole = await client.get(url, headers=matter.reader.headers)
    assert whole.status_code == 200 and whole.content == b""
