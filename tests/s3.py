"""A real S3-compatible server for tests: moto's standalone server, one per test run.

obstore's HTTP client is Rust (reqwest), so moto's in-process mocks cannot intercept it;
server mode also lets `casefolio serve` subprocesses reach the same buckets.
"""

from __future__ import annotations

import atexit
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3  # type: ignore[import-untyped]
import pytest
from moto.server import ThreadedMotoServer

from casefolio.config import Settings
from tests.servers import free_port

BUCKET = "casefolio-test"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"

_lock = threading.Lock()
_endpoint: str | None = None


def endpoint() -> str:
    """Return the endpoint of the run's moto server (started on first use) with BUCKET made."""
    global _endpoint
    with _lock:
        if _endpoint is None:
            port = free_port()
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            atexit.register(server.stop)
            url = f"http://127.0.0.1:{port}"
            boto3.client(
                "s3",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            ).create_bucket(Bucket=BUCKET)
            _endpoint = url
        return _endpoint


def fresh_blob_store_url() -> str:
    """An `s3://` blob store URL with a prefix of its own, so tests never see each other's blobs."""
    return f"s3://{BUCKET}/t-{uuid.uuid4().hex}"


def s3_settings(base: Settings, s3_endpoint: str) -> Settings:
    """Given test settings, return them pointed at a fresh prefix on the moto server."""
    return base.model_copy(
        update={
            "blob_store": fresh_blob_store_url(),
            "s3_endpoint_url": s3_endpoint,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
        }
    )


def s3_env(s3_endpoint: str) -> dict[str, str]:
    """The CASEFOLIO_* variables that point a process at a fresh prefix on the moto server."""
    return {
        "CASEFOLIO_BLOB_STORE": fresh_blob_store_url(),
        "CASEFOLIO_S3_ENDPOINT_URL": s3_endpoint,
        "CASEFOLIO_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "CASEFOLIO_S3_SECRET_ACCESS_KEY": SECRET_KEY,
    }


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The moto server's endpoint URL (import this fixture where S3 is needed)."""
    yield endpoint()


def make_settings(kind: str, tmp_path: Path, s3_endpoint: str) -> Settings:
    """Settings for a blob store test: the local folder, or a fresh S3 prefix."""
    if kind == "local":
        return Settings(data_dir=tmp_path)
    return s3_settings(Settings(data_dir=tmp_path), s3_endpoint)
