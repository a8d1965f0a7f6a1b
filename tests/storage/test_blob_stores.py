"""The BlobStore contract, run against every backend (see conftest.blob_store)."""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from casefolio.storage import (
    BlobMissing,
    BlobStore,
    LocalBlobStore,
    S3BlobStore,
    SpooledFile,
    durable,
)
from casefolio.storage.base import BlobsNotStored, BlobStoreUnavailable
from casefolio.storage.spool import HOLD_BYTES, spool_stream
from tests.servers import closed_port


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def spool(store: BlobStore, data: bytes) -> SpooledFile:
    """As an upload arrives: held in memory if small, else a file in staging."""
    return await spool_stream(_chunks(data), staging_dir=store.staging_dir, max_bytes=1 << 40)


def stage(store: BlobStore, data: bytes) -> SpooledFile:
    """A file in staging, whatever its size (as `casefolio import` stages files)."""
    path = store.staging_dir / f"staged-{secrets.token_hex(8)}.part"
    path.write_bytes(data)
    return SpooledFile(path, hashlib.sha256(data).hexdigest(), len(data))


async def put(store: BlobStore, data: bytes, *, how: str = "spooled") -> str:
    spooled = await spool(store, data) if how == "spooled" else stage(store, data)
    assert (spooled.held is not None) == (how == "spooled" and len(data) <= HOLD_BYTES)
    await store.put(spooled)
    return spooled.sha256


async def read_all(store: BlobStore, sha: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([c async for c in store.read(sha, start, end)])


def staging_files(store: BlobStore) -> list[Path]:
    return list(store.staging_dir.iterdir())


async def test_factory_builds_the_configured_kind(blob_store: BlobStore, store_kind: str) -> None:
    expected = LocalBlobStore if store_kind.startswith("local") else S3BlobStore
    assert isinstance(blob_store, expected)


@pytest.mark.parametrize("how", ["spooled", "staged"], ids=["held", "staged"])
async def test_put_exists_read(blob_store: BlobStore, store_kind: str, how: str) -> None:
    data = b"hello, casefolio\n" * 1000
    sha = await put(blob_store, data, how=how)
    assert sha == hashlib.sha256(data).hexdigest()
    assert await blob_store.exists(sha)
    assert await read_all(blob_store, sha) == data
    assert staging_files(blob_store) == []  # put consumed the spooled file
    local = blob_store.local_path(sha)
    if store_kind.startswith("local"):
        assert local is not None
        assert local.read_bytes() == data
        assert local.relative_to(blob_store.staging_dir.parent).parts == (sha[:2], sha[2:4], sha)
    else:
        assert local is None


async def test_read_ranges(blob_store: BlobStore) -> None:
    data = bytes(range(256)) * 20
    sha = await put(blob_store, data)
    assert await read_all(blob_store, sha, 0, 10) == data[:10]
    assert await read_all(blob_store, sha, 100, 300) == data[100:300]
    assert await read_all(blob_store, sha, 5000) == data[5000:]  # open-ended
    assert await read_all(blob_store, sha, 5000, None) == data[5000:]
    assert await read_all(blob_store, sha, len(data) - 1) == data[-1:]
    assert await read_all(blob_store, sha, 10, 10) == b""
    assert await read_all(blob_store, sha, 5000, 10**9) == data[5000:]  # end is clamped
    assert await read_all(blob_store, sha, len(data)) == b""
    assert await read_all(blob_store, sha, len(data) + 10, len(data) + 20) == b""
    with pytest.raises(ValueError):
        await read_all(blob_store, sha, 10, 5)
    with pytest.raises(ValueError):
        await read_all(blob_store, sha, -1)


@pytest.mark.s3
async def test_an_unreachable_bucket_is_never_read_as_an_empty_range(tmp_path: Path) -> None:
    """A range past the end reads as empty; a store that cannot be reached must not, though
    its error message holds "416" (here in the key's prefix; by chance in a port, a key or
    a duration)."""
    with closed_port() as port:
        store = S3BlobStore(
            bucket="casefolio",
            prefix="outage-416",
            staging_dir=tmp_path / "staging",
            endpoint_url=f"http://127.0.0.1:{port}",
            access_key_id="testing",
            secret_access_key="testing",
        )
        try:
            for start, end in ((0, None), (10, None), (10, 20)):
                with pytest.raises(BlobStoreUnavailable):
                    await read_all(store, "ab" * 32, start, end)
        finally:
            await store.close()


async def test_empty_blob(blob_store: BlobStore) -> None:
    sha = await put(blob_store, b"")
    assert sha == hashlib.sha256(b"").hexdigest()
    assert await blob_store.exists(sha)
    assert await read_all(blob_store, sha) == b""


@pytest.mark.parametrize("how", ["spooled", "staged"], ids=["held", "staged"])
async def test_put_same_content_twice_is_idempotent(blob_store: BlobStore, how: str) -> None:
    data = os.urandom(10_000)
    sha = await put(blob_store, data, how=how)
    first = dict([item async for item in blob_store.list()])[sha]
    if isinstance(blob_store, LocalBlobStore):
        # Age the blob so a refreshed mtime is visible.
        path = blob_store.local_path(sha)
        assert path is not None
        old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
        os.utime(path, (old, old))
        first = dict([item async for item in blob_store.list()])[sha]
    assert await put(blob_store, data, how=how) == sha
    assert await read_all(blob_store, sha) == data
    listed = [item async for item in blob_store.list()]
    assert [s for s, _ in listed] == [sha]
    assert listed[0][1] >= first  # refreshed (S3's Last-Modified has 1 s resolution)
    if isinstance(blob_store, LocalBlobStore):
        assert listed[0][1] > first + timedelta(days=1)
    assert staging_files(blob_store) == []


async def test_put_many(blob_store: BlobStore) -> None:
    present = os.urandom(3000)
    present_sha = await put(blob_store, present)
    datas = [os.urandom(4096) for _ in range(5)] + [b"", present]
    # Files in staging (as import stages them) and uploads held in memory, mixed.
    spooled = [stage(blob_store, data) for data in datas[:3]]
    spooled += [await spool(blob_store, data) for data in datas[3:]]
    assert [s.held is not None for s in spooled] == [False] * 3 + [True] * 4
    # The same content twice in one batch (two folders importing one file) is fine too.
    spooled.append(await spool(blob_store, datas[0]))
    await blob_store.put_many(spooled)
    assert staging_files(blob_store) == []  # every spooled file consumed
    for data in datas:
        sha = hashlib.sha256(data).hexdigest()
        assert await blob_store.exists(sha)
        assert await read_all(blob_store, sha) == data
    listed = {sha async for sha, _ in blob_store.list()}
    assert listed == {hashlib.sha256(d).hexdigest() for d in datas}
    assert present_sha in listed
    await blob_store.put_many([])  # nothing to do


async def test_put_many_reports_the_blobs_it_could_not_store(blob_store: BlobStore) -> None:
    good = await spool(blob_store, b"good")
    bad = stage(blob_store, b"bad")
    bad_sha = "a" * 63  # not a digest: refused, like put refuses it
    with pytest.raises(BlobsNotStored) as info:
        await blob_store.put_many([good, SpooledFile(bad.path, bad_sha, bad.size)])
    assert set(info.value.errors) == {bad_sha}
    assert isinstance(info.value.errors[bad_sha], ValueError)
    assert await read_all(blob_store, good.sha256) == b"good"  # the rest is stored
    assert staging_files(blob_store) == []


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fsync"])
async def test_local_put_many_refuses_a_file_not_the_size_spooled(
    tmp_path: Path, syncfs: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not syncfs:
        monkeypatch.setattr(durable, "_SYNCFS", None)
    blob_store = LocalBlobStore(tmp_path / "blobs")
    good = stage(blob_store, b"good")
    changed = stage(blob_store, b"changed later")
    changed.path.write_bytes(b"changed")  # shorter than spooled: must not be stored
    with pytest.raises(BlobsNotStored) as info:
        await blob_store.put_many([good, changed])
    assert set(info.value.errors) == {changed.sha256}
    assert not await blob_store.exists(changed.sha256)
    assert await read_all(blob_store, good.sha256) == b"good"
    assert staging_files(blob_store) == []


async def test_local_put_fsyncs_the_parents_of_new_directories_with_the_blobs_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    first = await spool(store, b"the first blob")
    path = store.local_path(first.sha256)
    assert path is not None
    leaf = path.parent
    synced: list[Path] = []
    parents_synced = threading.Event()
    fsync_dir = durable.fsync_dir

    def record(directory: Path) -> None:
        assert path.read_bytes() == b"the first blob"  # in place before any directory fsync
        if directory == leaf:
            # The new directories' parents are made durable meanwhile, not after.
            assert parents_synced.wait(10)
        fsync_dir(directory)
        synced.append(directory)
        if {store.root, leaf.parent} <= set(synced):
            parents_synced.set()

    monkeypatch.setattr(durable, "fsync_dir", record)
    await store.put(first)
    assert sorted(synced[:2]) == sorted([store.root, leaf.parent]) and synced[2:] == [leaf]
    assert await read_all(store, first.sha256) == b"the first blob"
    # Into a directory that exists: that directory alone.
    synced.clear()
    again = await spool(store, b"the first blob")
    await store.put(again)
    assert synced == [leaf]
    assert staging_files(store) == []


async def test_a_put_into_a_directory_another_put_made_waits_until_that_one_is_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    first = b"blob 0"
    prefix = hashlib.sha256(first).hexdigest()[:4]
    second = next(
        data
        for i in itertools.count(1)
        if hashlib.sha256(data := f"blob {i}".encode()).hexdigest()[:4] == prefix
    )
    path = store.local_path(hashlib.sha256(first).hexdigest())
    assert path is not None
    made_in = path.parent.parent  # the first put makes its directory there
    release, blocked = threading.Event(), threading.Event()
    fsync_dir = durable.fsync_dir

    def slow(directory: Path) -> None:
        if directory == made_in and not release.is_set():
            blocked.set()
            release.wait(10)
        fsync_dir(directory)

    monkeypatch.setattr(durable, "fsync_dir", slow)
    spooled = [await spool(store, data) for data in (first, second)]
    second_stored = anyio.Event()

    async def put_second() -> None:
        await store.put(spooled[1])
        second_stored.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(store.put, spooled[0])
        assert await anyio.to_thread.run_sync(blocked.wait, 10)
        tasks.start_soon(put_second)
        with anyio.move_on_after(0.5):
            await second_stored.wait()
        # Its own directory fsync is done by now, but the directory's entry is not durable.
        assert not second_stored.is_set()
        release.set()
    assert second_stored.is_set()
    assert [await read_all(store, s.sha256) for s in spooled] == [first, second]


async def test_a_put_into_a_directory_another_process_made_makes_its_entry_durable_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's store made the fan-out directories (and may not have fsynced their
    parents yet): this store's first put into them fsyncs those parents as well, the next
    put the blob's own directory alone."""
    root = tmp_path / "blobs"
    first = b"blob 0"
    prefix = hashlib.sha256(first).hexdigest()[:4]
    second, third = itertools.islice(
        (
            data
            for i in itertools.count(1)
            if hashlib.sha256(data := f"blob {i}".encode()).hexdigest()[:4] == prefix
        ),
        2,
    )
    other = LocalBlobStore(root)  # another process's store over the same folder
    await other.put(await spool(other, first))
    path = other.local_path(hashlib.sha256(first).hexdigest())
    assert path is not None
    leaf = path.parent
    store = LocalBlobStore(root)
    synced: list[Path] = []
    fsync_dir = durable.fsync_dir

    def record(directory: Path) -> None:
        fsync_dir(directory)
        synced.append(directory)

    monkeypatch.setattr(durable, "fsync_dir", record)
    await store.put(await spool(store, second))
    assert sorted(synced) == sorted([root, leaf.parent, leaf])
    synced.clear()
    await store.put(await spool(store, third))
    assert synced == [leaf]
    assert await read_all(store, hashlib.sha256(second).hexdigest()) == second


async def test_modified_is_when_the_blob_was_last_put(blob_store: BlobStore) -> None:
    assert await blob_store.modified("0" * 64) is None
    before = datetime.now(UTC) - timedelta(seconds=2)  # S3 reports whole seconds
    sha = await put(blob_store, b"dated")
    stored = await blob_store.modified(sha)
    assert stored is not None and before <= stored <= datetime.now(UTC) + timedelta(seconds=2)
    assert stored == dict([item async for item in blob_store.list()])[sha]
    await blob_store.delete(sha)
    assert await blob_store.modified(sha) is None


async def test_delete(blob_store: BlobStore) -> None:
    sha = await put(blob_store, b"to be deleted")
    await blob_store.delete(sha)
    assert not await blob_store.exists(sha)
    await blob_store.delete(sha)  # missing is fine
    assert [item async for item in blob_store.list()] == []


async def test_list(blob_store: BlobStore) -> None:
    before = datetime.now(UTC) - timedelta(minutes=5)
    shas = {await put(blob_store, f"blob {i}".encode()) for i in range(5)}
    listed = [item async for item in blob_store.list()]
    assert {sha for sha, _ in listed} == shas
    assert len(listed) == 5
    for _, modified in listed:
        assert modified.tzinfo is not None
        assert before < modified < datetime.now(UTC) + timedelta(minutes=5)


async def test_list_ignores_foreign_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    sha = await put(store, b"real")
    (store.root / "ab").mkdir()
    (store.root / "ab" / "cd").mkdir()
    (store.root / "ab" / "cd" / "README").write_text("not a blob")
    (store.root / "ab" / "cd" / ("ff" * 32)).write_text("wrong fan-out")
    (store.staging_dir / "upload-x.part").write_text("in flight")
    assert [s async for s, _ in store.list()] == [sha]


async def test_read_missing_blob_raises(blob_store: BlobStore) -> None:
    sha = hashlib.sha256(b"never stored").hexdigest()
    assert not await blob_store.exists(sha)
    for start, end in [(0, None), (3, None), (0, 10), (5, 5)]:
        with pytest.raises(BlobMissing) as info:
            await read_all(blob_store, sha, start, end)
        assert sha in str(info.value)


async def test_large_blob_round_trip(blob_store: BlobStore, store_kind: str) -> None:
    # 12 MiB is above the multipart part size, so S3 gets a multipart upload.
    data = os.urandom(12 * 1024 * 1024)
    sha = await put(blob_store, data)
    chunks = [c async for c in blob_store.read(sha)]
    assert max(map(len, chunks)) <= 1024 * 1024
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == sha
    middle = await read_all(blob_store, sha, 5 * 1024 * 1024 - 7, 9 * 1024 * 1024 + 3)
    assert middle == data[5 * 1024 * 1024 - 7 : 9 * 1024 * 1024 + 3]
    if store_kind == "s3":
        import obstore

        assert isinstance(blob_store, S3BlobStore)
        meta = await obstore.head_async(blob_store._store, f"{sha[:2]}/{sha[2:4]}/{sha}")
        # A multipart ETag is "<md5 of part md5s>-<number of parts>".
        assert meta["e_tag"] is not None
        assert meta["e_tag"].strip('"').rsplit("-", 1)[-1] == "2"


@pytest.mark.parametrize(
    "bad",
    [
        "../../../../etc/passwd",
        "ab/../../" + "a" * 55,
        "A" * 64,  # uppercase
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "a" * 63 + "\n",
        "",
    ],
)
async def test_bad_sha_is_rejected(blob_store: BlobStore, bad: str) -> None:
    with pytest.raises(ValueError):
        await blob_store.exists(bad)
    with pytest.raises(ValueError):
        await blob_store.delete(bad)
    with pytest.raises(ValueError):
        blob_store.local_path(bad)
    with pytest.raises(ValueError):
        await read_all(blob_store, bad)
    staged = stage(blob_store, b"payload")
    with pytest.raises(ValueError):
        await blob_store.put(SpooledFile(path=staged.path, sha256=bad, size=staged.size))
    assert not staged.path.exists()  # consumed even though put failed
    held = await spool(blob_store, b"payload")
    with pytest.raises(ValueError):
        await blob_store.put(SpooledFile(held.path, bad, held.size, held.held))
    assert staging_files(blob_store) == []
    assert [item async for item in blob_store.list()] == []
