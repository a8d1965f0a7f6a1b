"""Blobs in an S3-compatible bucket, through obstore (Rust client, async)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import obstore
from obstore.exceptions import BaseError, GenericError, NotFoundError
from obstore.store import S3Store

from casefolio.storage.base import (
    READ_CHUNK_BYTES,
    BlobMissing,
    BlobsNotStored,
    BlobStoreUnavailable,
    SpooledFile,
    StagingStore,
    blob_key,
    check_range,
    check_sha256,
    unlink,
)

if TYPE_CHECKING:
    from obstore import GetOptions
    from obstore.store import ClientConfig, RetryConfig, S3Config

# S3 allows at most 10,000 parts per upload (each >= 5 MiB but the last).
_MIN_PART_BYTES = 8 * 1024 * 1024
_MAX_PARTS = 9_000
# Parts in flight per upload; memory per upload is about this times the part size.
_PUT_CONCURRENCY = 8

# Uploads one put_many runs at once.
_PUT_MANY_CONCURRENCY = 8

# obstore raises the builtin for some calls (get) and its own class for others.
_NOT_FOUND = (FileNotFoundError, NotFoundError)
#: A prefix no blob has (blob keys are digests): listing it, answered with nothing, shows
#: the bucket is there (a HEAD's 404 would not tell a missing bucket from a missing key).
_CHECK_PREFIX = "casefolio-health-check"
#: How long obstore goes on retrying a failed request, at the most.
_RETRY_AT_MOST = timedelta(seconds=10)


@contextlib.contextmanager
def _reaching_the_bucket() -> Iterator[None]:
    """Turn obstore's failures to reach or use the bucket (after its own retries) into
    BlobStoreUnavailable; a missing key stays what it is, a missing bucket does not."""
    try:
        yield
    except _NOT_FOUND as exc:
        if _no_bucket(exc):
            raise _bucket_missing(exc) from exc
        raise
    except BaseError as exc:
        raise _unavailable(exc) from exc


#: How obstore words a 416 answer (the status, after the request's URL and duration).
_RANGE_NOT_SATISFIABLE = "status code: 416 Range Not Satisfiable"


def _no_bucket(exc: BaseException) -> bool:
    """Whether a 404 names the bucket, not the key: misspelt or deleted, no request can work
    (a HEAD's 404 has no body to say so)."""
    return "<Code>NoSuchBucket</Code>" in str(exc)  # the answer's code, not a key or URL


def _bucket_missing(exc: BaseException) -> BlobStoreUnavailable:
    return BlobStoreUnavailable(f"the bucket does not exist: {_unavailable(exc)}")


def _unavailable(exc: BaseException) -> BlobStoreUnavailable:
    # obstore's message runs over many lines (the retries, the source chain): the first says
    # what failed and where.
    return BlobStoreUnavailable(str(exc).partition("\n")[0])


def _part_size(size: int) -> int:
    return max(_MIN_PART_BYTES, -(-size // _MAX_PARTS))


def _sha_from_key(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) != 3:
        return None
    a, b, sha = parts
    try:
        check_sha256(sha)
    except ValueError:
        return None
    return sha if (a, b) == (sha[:2], sha[2:4]) else None


class S3BlobStore(StagingStore):
    """Content-addressed blobs at ``<prefix>/ab/cd/<sha256>`` in one bucket."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        staging_dir: Path,
        endpoint_url: str = "",
        region: str = "us-east-1",
        access_key_id: str = "",
        secret_access_key: str = "",
        read_timeout: timedelta = timedelta(seconds=20),
    ) -> None:
        super().__init__(staging_dir)
        config: S3Config = {"region": region}
        if endpoint_url:
            config["endpoint"] = endpoint_url
        # Without explicit keys obstore falls back to AWS_* variables / instance roles.
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        client: ClientConfig = {
            # obstore's 30 s default covers the whole request *including the body*,
            # which would cut multi-GB downloads and uploads short. Bound the total
            # generously and catch stalled connections with the per-read timeout: a store
            # that accepts connections and never answers is given up on after it.
            "timeout": timedelta(hours=24),
            "read_timeout": read_timeout,
            "connect_timeout": timedelta(seconds=10),
            # Local S3-compatible servers (MinIO, moto) usually speak plain http.
            "allow_http": endpoint_url.startswith("http://"),
        }
        # obstore retries a read that timed out (not a write) until its retry timeout
        # (3 minutes) has passed: one silent read_timeout is enough to give up on a store
        # that does not answer. Connection errors are still retried, for up to 10 s.
        retry: RetryConfig = {"retry_timeout": min(read_timeout, _RETRY_AT_MOST)}
        # obstore has no explicit close; the connection pool goes with the object.
        self._store = S3Store(
            bucket,
            prefix=prefix or None,
            config=config,
            client_options=client,
            retry_config=retry,
        )

    def local_path(self, sha256: str) -> Path | None:
        check_sha256(sha256)
        return None

    async def put(self, spooled: SpooledFile) -> None:
        if spooled.held is not None:
            # A small upload never touched the disk: one PUT from memory (fresh
            # Last-Modified, as below).
            with _reaching_the_bucket():
                await obstore.put_async(self._store, blob_key(spooled.sha256), spooled.held)
            return
        try:
            key = blob_key(spooled.sha256)
            # Always upload, even when the key exists: an S3 PUT is atomic and sets
            # a fresh Last-Modified, which both refreshes gc's grace period and
            # avoids a check-then-skip race with a concurrent gc delete.
            # obstore switches to multipart itself when the file exceeds chunk_size.
            with _reaching_the_bucket():
                await obstore.put_async(
                    self._store,
                    key,
                    spooled.path,
                    chunk_size=_part_size(spooled.size),
                    max_concurrency=_PUT_CONCURRENCY,
                )
        finally:
            # Consumed on success and failure alike; shielded so a cancelled
            # request still cleans up its (possibly multi-GB) staging file.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(unlink, spooled.path)

    async def put_many(self, spooled: Sequence[SpooledFile]) -> None:
        # No shared work to save on S3 (each PUT is durable when it returns); just
        # overlap a few uploads.
        errors: dict[str, BaseException] = {}
        limit = anyio.Semaphore(_PUT_MANY_CONCURRENCY)

        async def one(item: SpooledFile) -> None:
            started = False
            try:
                async with limit:
                    started = True
                    await self.put(item)  # consumes the file, whatever happens
            except Exception as exc:
                errors[item.sha256] = exc
            finally:
                if not started:  # cancelled while waiting for its turn
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(unlink, item.path)

        async with anyio.create_task_group() as tg:
            for item in spooled:
                tg.start_soon(one, item)
        if errors:
            raise BlobsNotStored(errors)

    async def exists(self, sha256: str) -> bool:
        return await self.modified(sha256) is not None

    async def check(self) -> None:
        with _reaching_the_bucket():
            async for _ in obstore.list(self._store, prefix=_CHECK_PREFIX, chunk_size=1):
                break

    async def modified(self, sha256: str) -> datetime | None:
        try:
            with _reaching_the_bucket():
                meta = await obstore.head_async(self._store, blob_key(sha256))
        except _NOT_FOUND:
            return None
        return meta["last_modified"]

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        key = blob_key(sha256)
        check_range(start, end)
        if end is not None and end == start:
            # S3 cannot express an empty range; still report a missing blob.
            if not await self.exists(sha256):
                raise BlobMissing(sha256)
            return
        options: GetOptions = {}
        if end is not None:
            options["range"] = (start, end)  # obstore's end is exclusive, like ours
        elif start:
            options["range"] = {"offset": start}
        try:
            result = await obstore.get_async(self._store, key, options=options)
        except _NOT_FOUND as exc:
            if _no_bucket(exc):
                raise _bucket_missing(exc) from exc
            raise BlobMissing(sha256) from exc
        except BaseError as exc:
            # A range starting at/after the end: empty, as reading a local file is. Only the
            # server's status says so: the message also holds the URL, the key and the time
            # taken, where "416" turns up by chance (an outage read as an empty file).
            range_past_the_end = _RANGE_NOT_SATISFIABLE in str(exc)
            if options and isinstance(exc, GenericError) and range_past_the_end:
                return
            raise _unavailable(exc) from exc
        # min_chunk_size is a floor, not a ceiling; slice to keep chunks <= 1 MiB.
        with _reaching_the_bucket():
            async for chunk in result.stream(min_chunk_size=READ_CHUNK_BYTES):
                if len(chunk) <= READ_CHUNK_BYTES:
                    yield chunk
                    continue
                view = memoryview(chunk)
                for offset in range(0, len(chunk), READ_CHUNK_BYTES):
                    yield bytes(view[offset : offset + READ_CHUNK_BYTES])

    async def delete(self, sha256: str) -> None:
        # S3 itself does not complain about a missing key; other backends might.
        with contextlib.suppress(*_NOT_FOUND), _reaching_the_bucket():
            await obstore.delete_async(self._store, blob_key(sha256))

    async def list(self) -> AsyncIterator[tuple[str, datetime]]:
        # Paths come back relative to the store's prefix.
        with _reaching_the_bucket():
            async for batch in obstore.list(self._store, chunk_size=1000):
                for meta in batch:
                    sha = _sha_from_key(meta["path"])
                    if sha is not None:
                        yield sha, meta["last_modified"]
