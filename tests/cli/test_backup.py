"""`casefolio backup`: a copy of an embedded installation that is a data folder of its own,
taken while another connection writes, every file checked; PostgreSQL and S3 refused."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import select

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import Document, DocumentVersion, Project
from casefolio.storage import BlobStore, LocalBlobStore
from tests.cli.conftest import Invoke, Seed, in_db, read_tree, spool, write_tree

FILES = {
    "pleadings/claim.txt": b"particulars of claim",
    "pleadings/defence.txt": b"defence and counterclaim",
    "letters/before action.txt": b"letter before action",
    "copy of claim.txt": b"particulars of claim",  # the same bytes: one blob
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _documents(settings: Settings) -> object:
    """Every document's title with its current bytes' SHA-256, and the project names."""

    async def work(db: Database, blobs: BlobStore) -> object:
        async with db.read() as session:
            rows = await session.execute(
                select(Document.title, DocumentVersion.sha256).join(
                    DocumentVersion, DocumentVersion.id == Document.current_version_id
                )
            )
            names = await session.scalars(select(Project.name))
            return sorted(tuple(row) for row in rows), sorted(names)

    return in_db(settings, work)


def _stored_bytes(blob_dir: Path) -> dict[str, bytes]:
    return {Path(name).name: data for name, data in read_tree(blob_dir).items()}


@pytest.fixture
def installation(invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path) -> Seed:
    if not settings.is_sqlite:
        pytest.skip("a backup of PostgreSQL is pg_dump's (test_postgresql_is_refused)")
    tree = write_tree(tmp_path / "matter", FILES)
    assert invoke("import", str(tree), "--project", str(seed.project_id)).exit_code == 0

    async def orphan(db: Database, blobs: BlobStore) -> None:  # no version names it
        await blobs.put(spool(blobs, b"an orphan gc has not removed yet"))

    in_db(settings, orphan)
    return seed


def test_a_backup_is_a_data_folder_of_what_was_committed_when_it_began(
    invoke: Invoke, installation: Seed, settings: Settings, tmp_path: Path
) -> None:
    live = settings.sqlite_file
    assert live is not None
    dest = tmp_path / "backup"
    # Another process is half-way through a write: the backup neither waits for it nor
    # copies it.
    with closing(sqlite3.connect(live, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE projects SET name = 'not committed'")
        result = invoke("backup", str(dest))
        writer.execute("ROLLBACK")
    assert result.exit_code == 0, result.output

    with closing(sqlite3.connect(dest / "casefolio.db")) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    restored = Settings(data_dir=dest, database_url="")
    assert _documents(restored) == _documents(settings)
    assert "not committed" not in str(_documents(restored))
    # Only the blobs a version names, byte for byte; the orphan is left behind.
    wanted = {_sha(data) for data in FILES.values()}
    copied = _stored_bytes(dest / "blobs")
    assert set(copied) == wanted
    assert all(_sha(data) == name for name, data in copied.items())
    assert set(_stored_bytes(settings.blob_dir)) > wanted
    # The commands take it as their data folder; what the installation did since is not in it.
    assert invoke("projects", "create", "Later v Afterwards").exit_code == 0
    listed = invoke("projects", "list", data_dir=str(dest), database_url="")
    assert listed.exit_code == 0, listed.output
    assert "Smith v Jones" in listed.output and "Later v Afterwards" not in listed.output

    again = invoke("backup", str(dest))
    assert again.exit_code == 1
    assert "is not an empty directory" in again.output
    assert _stored_bytes(dest / "blobs") == copied


def test_a_missing_or_damaged_file_is_reported_and_not_copied(
    invoke: Invoke, installation: Seed, settings: Settings, tmp_path: Path
) -> None:
    store = LocalBlobStore(settings.blob_dir)
    damaged, missing = (store.local_path(_sha(FILES[name])) for name in list(FILES)[1:3])
    assert damaged is not None and missing is not None
    damaged.chmod(0o644)
    damaged.write_bytes(b"X" * damaged.stat().st_size)  # the same size, other bytes
    missing.unlink()
    dest = tmp_path / "backup"

    result = invoke("backup", str(dest))

    assert result.exit_code == 1
    said = " ".join(result.output.split())  # as one line, however the terminal wrapped it
    assert f"{damaged.name}: damaged in the installation" in said
    assert f"{missing.name}: missing from the installation's blob folder" in said
    assert set(_stored_bytes(dest / "blobs")) == {_sha(FILES["pleadings/claim.txt"])}
    assert (dest / "casefolio.db").is_file()  # the rest is a backup still


def test_a_file_that_cannot_be_read_is_reported_and_the_rest_backed_up(
    invoke: Invoke, installation: Seed, settings: Settings, tmp_path: Path
) -> None:
    store = LocalBlobStore(settings.blob_dir)
    unreadable = store.local_path(_sha(FILES["pleadings/defence.txt"]))
    assert unreadable is not None
    unreadable.chmod(0o644)
    unreadable.unlink()
    unreadable.mkdir()  # every read fails, as on a failing disk
    dest = tmp_path / "backup"

    result = invoke("backup", str(dest))

    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert f"{unreadable.name}: cannot be read in the installation: Is a directory" in said
    assert set(_stored_bytes(dest / "blobs")) == {
        _sha(FILES["pleadings/claim.txt"]),
        _sha(FILES["letters/before action.txt"]),
    }
    assert (dest / "casefolio.db").is_file()


def test_postgresql_is_refused_with_where_to_look(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    if settings.is_sqlite:
        pytest.skip("the suite's database is SQLite here")
    result = invoke("backup", str(tmp_path / "backup"))
    assert result.exit_code == 1
    assert "pg_dump" in result.output and "docs/scaling.md" in result.output
    assert not (tmp_path / "backup").exists()


def test_an_s3_blob_store_is_refused(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("backup", str(tmp_path / "backup"), blob_store="s3://bucket/cases")
    assert result.exit_code == 1
    assert "PostgreSQL or S3" in result.output
    assert not (tmp_path / "backup").exists()
