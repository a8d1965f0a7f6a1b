"""`casefolio gc`: orphans past the grace period go, everything else stays."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import DocumentVersion
from casefolio.db.types import utcnow
from casefolio.domain import unclaimed
from casefolio.domain.intake import NewFile
from casefolio.storage import BlobStore, LocalBlobStore, staging
from tests.cli.conftest import Invoke, Seed, in_db, spool, write_tree
from tests.servers import closed_port

HOURS = 3600


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _blob(settings: Settings, data: bytes) -> Path:
    path = LocalBlobStore(settings.blob_dir).local_path(_sha(data))
    assert path is not None
    return path


def _setup(invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path) -> dict[str, Path]:
    """Two referenced blobs (one of them old), an old and a young orphan, two staging files."""
    source = write_tree(tmp_path / "src", {"a.txt": b"referenced", "b.txt": b"old but used"})
    assert invoke("import", str(source), "--project", str(seed.project_id)).exit_code == 0

    async def orphans(db: Database, blobs: BlobStore) -> None:
        for data in (b"old orphan", b"young orphan"):
            await blobs.put(spool(blobs, data))

    in_db(settings, orphans)
    staging = LocalBlobStore(settings.blob_dir).staging_dir
    paths = {
        "referenced": _blob(settings, b"referenced"),
        "old referenced": _blob(settings, b"old but used"),
        "old orphan": _blob(settings, b"old orphan"),
        "young orphan": _blob(settings, b"young orphan"),
        "stale staging": staging / "upload-stale.part",
        "fresh staging": staging / "upload-fresh.part",
    }
    paths["stale staging"].write_bytes(b"abandoned upload")
    paths["fresh staging"].write_bytes(b"upload in flight")
    for name in ("old referenced", "old orphan", "stale staging"):
        _age(paths[name], 2 * HOURS)
    _age(paths["young orphan"], 10 * 60)  # inside the default 60-minute grace period
    return paths


def test_dry_run_lists_orphans_and_deletes_nothing(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    paths = _setup(invoke, seed, settings, tmp_path)
    result = invoke("gc", "--dry-run")
    assert result.exit_code == 0, result.output
    # Not a terminal: one plain line per item, however long (a sha256 is not wrapped).
    assert any(
        line.startswith(f"would remove blob {_sha(b'old orphan')} (modified ")
        for line in result.output.splitlines()
    )
    out = " ".join(result.output.split())
    assert f"would remove blob {_sha(b'old orphan')}" in out
    assert "would remove staging file upload-stale.part" in out
    assert "Would remove 0 unclaimed attachment(s), 1 orphan blob(s) and 1 staging file(s)" in out
    assert "kept 2 referenced blob(s) and 1 unreferenced younger than 60 minute(s)" in out
    assert all(p.exists() for p in paths.values())


def test_gc_removes_old_orphans_and_stale_staging_only(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    paths = _setup(invoke, seed, settings, tmp_path)
    result = invoke("gc")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"removed blob {_sha(b'old orphan')}" in out
    # Kept by why: both referenced blobs (the young one too), and the young orphan.
    assert "kept 2 referenced blob(s) and 1 unreferenced younger than 60 minute(s)" in out
    gone = {name for name, path in paths.items() if not path.exists()}
    assert gone == {"old orphan", "stale staging"}
    # A shorter grace period reaches the young orphan too; referenced blobs never go.
    assert invoke("gc", "--grace-minutes", "5").exit_code == 0
    gone = {name for name, path in paths.items() if not path.exists()}
    assert gone == {"old orphan", "stale staging", "young orphan"}
    assert paths["referenced"].read_bytes() == b"referenced"
    assert paths["old referenced"].read_bytes() == b"old but used"


def test_gc_removes_uploads_unclaimed_longer_than_the_setting(
    invoke: Invoke, seed: Seed, settings: Settings
) -> None:
    """CASEFOLIO_UNCLAIMED_ATTACHMENT_HOURS decides; the bytes go in the same run."""

    async def upload(db: Database, blobs: BlobStore) -> list[int]:
        ids = []
        async with db.write() as session:
            for data, age in ((b"waited too long", 3 * HOURS), (b"still waiting", HOURS)):
                version, _ = await unclaimed.create(
                    session,
                    who=seed.operator,
                    blobs=blobs,
                    received=NewFile(spool(blobs, data), "a"),
                )
                await session.execute(
                    update(DocumentVersion)
                    .where(DocumentVersion.id == version.id)
                    .values(created_at=utcnow() - timedelta(seconds=age))
                )
                ids.append(version.id)
        return ids

    old, young = in_db(settings, upload)  # type: ignore[misc]
    _age(_blob(settings, b"waited too long"), 3 * HOURS)
    _age(_blob(settings, b"still waiting"), HOURS * 1.5)
    result = invoke("gc", unclaimed_attachment_hours="2")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"removed unclaimed attachment {old}" in out
    assert f"removed unclaimed attachment {young}" not in out
    assert f"removed blob {_sha(b'waited too long')}" in out
    assert not _blob(settings, b"waited too long").exists()
    assert _blob(settings, b"still waiting").exists()


def test_gc_keeps_an_old_staging_file_of_a_running_process(
    invoke: Invoke, seed: Seed, settings: Settings
) -> None:
    blobs = LocalBlobStore(settings.blob_dir)
    fd, slow_upload = staging.temp_file(blobs.staging_dir, "upload")  # this process: running
    os.close(fd)
    abandoned = blobs.staging_dir / "upload-abandoned.part"  # no running owner
    abandoned.write_bytes(b"abandoned")
    for path in (slow_upload, abandoned):
        _age(path, 2 * HOURS)
    result = invoke("gc")
    assert result.exit_code == 0, result.output
    assert slow_upload.exists()
    assert not abandoned.exists()
    slow_upload.unlink()


def test_an_s3_store_that_cannot_be_reached_is_one_line_and_nothing_removed(
    invoke: Invoke, seed: Seed, settings: Settings
) -> None:
    with closed_port() as port:
        closed = f"http://127.0.0.1:{port}"
        result = invoke(
            "gc",
            blob_store="s3://casefolio-test/gc",
            s3_endpoint_url=closed,
            s3_access_key_id="testing",
            s3_secret_access_key="testing",
        )
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert out.startswith("Cannot reach the blob store: ") and closed in out
    assert "Traceback" not in out
