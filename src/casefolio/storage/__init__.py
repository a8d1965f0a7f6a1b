"""Blob storage: the ``BlobStore`` protocol and its local-folder and S3 backends."""

from __future__ import annotations

from datetime import timedelta

from casefolio.config import Settings
from casefolio.storage.base import BlobMissing, BlobStore, SpooledFile
from casefolio.storage.local import LocalBlobStore
from casefolio.storage.s3 import S3BlobStore

__all__ = [
    "BlobMissing",
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "SpooledFile",
    "open_blob_store",
]


def open_blob_store(settings: Settings) -> BlobStore:
    """Build the store the settings ask for: ``s3://bucket/prefix`` or the local blob folder."""
    if not settings.blob_store:
        return LocalBlobStore(settings.blob_dir)
    location = settings.s3_location
    if location is None:
        raise ValueError("CASEFOLIO_BLOB_STORE must look like s3://bucket/prefix")
    bucket, prefix = location
    return S3BlobStore(
        bucket=bucket,
        prefix=prefix,
        # Uploads are received completely (and hashed) before they go to S3,
        # so they need local room; keep it next to the rest of the data.
        staging_dir=settings.data_dir / "staging",
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        read_timeout=timedelta(seconds=settings.s3_read_timeout_seconds),
    )
