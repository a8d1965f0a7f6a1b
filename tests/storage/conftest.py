"""Blob store fixtures: every store test runs against the local folder and S3 (moto server)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3  # type: ignore[import-untyped]
import pytest
from moto.server import ThreadedMotoServer

from casefolio.config import Settings
from casefolio.storage import BlobStore, open_blob_store

BUCKET = "casefolio-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A standalone moto S3 server with one bucket; obstore (Rust HTTP) needs server mode."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def make_settings(kind: str, tmp_path: Path, s3_endpoint: str) -> Settings:
    if kind == "local":
        return Settings(data_dir=tmp_path)
    # A fresh prefix per test keeps list() results independent between tests.
    return Settings(
        data_dir=tmp_path,
        blob_store=f"s3://{BUCKET}/t-{uuid.uuid4().hex}",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )


@pytest.fixture(params=["local", "s3"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
async def blob_store(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[BlobStore]:
    # Only start moto for the S3 variant, so local-only runs stay fast.
    endpoint = request.getfixturevalue("s3_endpoint") if store_kind == "s3" else ""
    store = open_blob_store(make_settings(store_kind, tmp_path, endpoint))
    yield store
    await store.close()
