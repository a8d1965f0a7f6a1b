"""When the store the bytes go to fails: S3 stopped (503, Retry-After) and a full disk (507).
Either way the request changes nothing and says so; nothing is a 500."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import boto3  # type: ignore[import-untyped]
import httpx
import pytest
from moto.server import ThreadedMotoServer

from casefolio.config import Settings
from casefolio.db import migrate
from casefolio.db.engine import Database
from casefolio.storage.base import BlobStoreUnavailable
from casefolio.storage.health import TTL_SECONDS, BlobStoreHealth
from tests.api.snapshots import snapshot
from tests.api.v1.conftest import Matter, make_matter, upload
from tests.clocks import Seconds
from tests.factories import make_actor, serving
from tests.s3 import ACCESS_KEY, BUCKET, SECRET_KEY, s3_settings
from tests.servers import free_port


class MotoServer:
    """An S3 server of this module's own, which a test may stop and start again on its port.

    While stopped, the port is held bound but not listened on (connections are refused, as
    by a server that is down): a server of a suite running in parallel cannot take it
    meanwhile, and the restart does not fail to bind it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None
        self._held: socket.socket | None = None

    def start(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ).create_bucket(Bucket=BUCKET)

    def stop(self, *, hold_port: bool = True) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if hold_port and self._held is None:
            held = socket.socket()
            # The stopped server's closed connections may linger in TIME_WAIT on the port.
            held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            held.bind(("127.0.0.1", self.port))
            self._held = held
        elif not hold_port and self._held is not None:
            self._held.close()
            self._held = None


@pytest.fixture
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop(hold_port=False)


@pytest.mark.s3
async def test_with_s3_stopped_uploads_and_downloads_are_503_and_change_nothing(
    settings: Settings, moto: MotoServer
) -> None:
    async with serving(s3_settings(settings, moto.endpoint)) as (app, client):
        db: Database = app.state.casefolio.db
        clock = Seconds()
        app.state.casefolio.blob_health = BlobStoreHealth(app.state.casefolio.blobs, clock=clock)
        matter = await make_matter(client, db, await make_actor(db, operator=True))
        await _s3_outage(client, matter, db, moto, clock)


async def _s3_outage(
    client: httpx.AsyncClient, matter: Matter, db: Database, moto: MotoServer, clock: Seconds
) -> None:
    stored = await upload(client, matter, b"%PDF before the outage", "before.pdf")
    assert stored.status_code == 201, stored.text
    content = matter.url(f"/documents/{stored.json()['id']}/content")
    assert (await client.get("/health")).json()["blobStore"] == "ok"
    moto.stop()
    before = await snapshot(db)
    # Within its two seconds /health repeats the store's last answer; then it asks again.
    assert (await client.get("/health")).json()["blobStore"] == "ok"
    clock.advance(TTL_SECONDS)
    health = await client.get("/health")
    assert health.status_code == 200  # everything but the files still serves
    assert health.json()["blobStore"] == "unavailable"

    refused = await upload(client, matter, b"%PDF during the outage", "during.pdf")
    download = await client.get(content, headers=matter.reader.headers)
    attachment = await client.post(
        "/api/v3/attachments",
        files={"file": ("during.pdf", b"%PDF v3", "application/pdf")},
        data={"metadata": '{"fileName": "during.pdf"}'},
        headers=matter.writer.headers,
    )

    for answer in (refused, download):
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert "file store cannot be reached" in answer.json()["detail"]
    assert attachment.status_code == 503, attachment.text
    assert "file store cannot be reached" in attachment.json()["message"]
    # No document, version, audit entry (not even of a download) or change was written.
    assert await snapshot(db) == before

    moto.start()  # an empty bucket: moto keeps nothing
    assert (await client.get("/health")).json()["blobStore"] == "unavailable"
    clock.advance(TTL_SECONDS)
    assert (await client.get("/health")).json()["blobStore"] == "ok"
    again = await upload(client, matter, b"%PDF after the outage", "after.pdf")
    assert again.status_code == 201, again.text


@pytest.mark.s3
async def test_a_bucket_that_does_not_exist_is_unavailable_not_a_500(
    settings: Settings, moto: MotoServer
) -> None:
    misspelt = s3_settings(settings, moto.endpoint).model_copy(
        update={"blob_store": "s3://casefolio-no-such-bucket/prod"}
    )
    async with serving(misspelt) as (app, client):
        db: Database = app.state.casefolio.db
        health = await client.get("/health")
        assert health.json()["blobStore"] == "unavailable"
        matter = await make_matter(client, db, await make_actor(db, operator=True))
        before = await snapshot(db)

        refused = await upload(client, matter, b"%PDF into no bucket", "nowhere.pdf")

        assert refused.status_code == 503, refused.text
        assert "file store cannot be reached" in refused.json()["detail"]
        assert await snapshot(db) == before
        with pytest.raises(BlobStoreUnavailable, match="the bucket does not exist"):
            async for _ in app.state.casefolio.blobs.read("0" * 64):
                pass


async def test_an_s3_store_that_accepts_connections_but_never_answers_is_a_503_in_bounded_time(
    settings: Settings,
) -> None:
    # A store behind a load balancer whose backend hangs: connections are accepted (the
    # kernel's backlog), nothing is ever answered.
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        hanging = s3_settings(settings, endpoint).model_copy(
            update={"s3_read_timeout_seconds": 1.0}
        )
        async with serving(hanging) as (app, client):
            db: Database = app.state.casefolio.db
            matter = await make_matter(client, db, await make_actor(db, operator=True))
            before = await snapshot(db)
            with anyio.fail_after(10):  # the read timeout, once: not obstore's 3 minutes
                refused = await upload(client, matter, b"%PDF into the void", "void.pdf")
                with pytest.raises(BlobStoreUnavailable):
                    await anext(app.state.casefolio.blobs.read("a" * 64))
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "5"
            assert await snapshot(db) == before


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB file system (tmpfs), for a disk that fills up."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


async def test_health_says_when_the_blob_folder_cannot_be_written(
    small_disk: Path, settings: Settings
) -> None:
    async with serving(settings.model_copy(update={"data_dir": small_disk})) as (app, client):
        clock = Seconds()
        app.state.casefolio.blob_health = BlobStoreHealth(app.state.casefolio.blobs, clock=clock)
        assert (await client.get("/health")).json()["blobStore"] == "ok"
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        try:
            clock.advance(TTL_SECONDS)
            health = await client.get("/health")
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
        assert health.status_code == 200
        assert health.json()["blobStore"] == "unavailable"
        clock.advance(TTL_SECONDS)
        assert (await client.get("/health")).json()["blobStore"] == "ok"


async def test_an_upload_the_disk_has_no_room_for_is_507_and_changes_nothing(
    small_disk: Path, settings: Settings
) -> None:
    on_small_disk = settings.model_copy(update={"data_dir": small_disk, "blob_store": ""})
    async with serving(on_small_disk) as (app, client):
        db: Database = app.state.casefolio.db
        matter = await make_matter(client, db, await make_actor(db, operator=True))
        before = await snapshot(db)

        too_big = await upload(client, matter, b"%PDF" + b"x" * 5 * 1024 * 1024, "big.pdf")

        assert too_big.status_code == 507, too_big.text
        assert "no space left" in too_big.json()["detail"]
        assert await snapshot(db) == before
        # What it wrote before the disk filled up is gone again: a small file fits.
        small = await upload(client, matter, b"%PDF" + b"x" * 512 * 1024, "small.pdf")
        assert small.status_code == 201, small.text


async def test_a_write_the_database_s_disk_has_no_room_for_is_507_and_changes_nothing(
    small_disk: Path, settings: Settings, is_postgres: bool
) -> None:
    if is_postgres:
        pytest.skip("the database is SQLite's file here; PostgreSQL's disk is its own")
    on_small_disk = Settings(data_dir=small_disk, database_url="")
    await anyio.to_thread.run_sync(migrate.upgrade, on_small_disk)
    async with serving(on_small_disk) as (app, client):
        db: Database = app.state.casefolio.db
        operator = await make_actor(db, operator=True)
        before = await snapshot(db)
        filler = small_disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb", buffering=0) as out:
            while True:
                out.write(b"\0" * 4096)

        project = {"name": "Full disk", "description": "d" * 100_000}
        refused = await client.post("/api/v1/projects", json=project, headers=operator.headers)

        assert refused.status_code == 507, refused.text
        assert "no space left" in refused.json()["detail"]
        filler.unlink()
        assert await snapshot(db) == before
        made = await client.post("/api/v1/projects", json=project, headers=operator.headers)
        assert made.status_code == 201, made.text
