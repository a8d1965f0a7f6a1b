"""Blob store fixtures: every store test runs against the local folder and S3 (moto server).

The local folder runs twice: as on this machine (Linux: batches made durable with syncfs),
and with per-file fsyncs, what it does where syncfs is missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from casefolio.storage import BlobStore, durable, open_blob_store
from tests.s3 import make_settings, s3_endpoint

__all__ = ["s3_endpoint"]  # the moto server fixture, shared with the API and e2e tests


@pytest.fixture(params=["local", "local-fsync", "s3"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
async def blob_store(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BlobStore]:
    # Only start moto for the S3 variant, so local-only runs stay fast.
    endpoint = request.getfixturevalue("s3_endpoint") if store_kind == "s3" else ""
    if store_kind == "local-fsync":
        monkeypatch.setattr(durable, "_SYNCFS", None)
        store_kind = "local"
    store = open_blob_store(make_settings(store_kind, tmp_path, endpoint))
    yield store
    await store.close()
