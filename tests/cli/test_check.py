"""`casefolio check`: every stored file read back against its SHA-256 and size; a missing or
damaged one printed with the versions that need it (exit 1); nothing changed. Local folder
and S3 alike."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3  # type: ignore[import-untyped]
import pytest

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.domain import projects
from casefolio.storage import BlobStore, LocalBlobStore
from casefolio.storage.base import blob_key
from tests.cli.conftest import Invoke, Seed, in_db, read_tree, table_rows, write_tree
from tests.s3 import ACCESS_KEY, BUCKET, SECRET_KEY, s3_endpoint

__all__ = ["s3_endpoint"]

FILES = {
    "claim.txt": b"particulars of claim",
    "defence.txt": b"defence and counterclaim",
    "copy of claim.txt": b"particulars of claim",  # the same bytes: one blob, two versions
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _said(output: str) -> str:
    return " ".join(output.split())  # as one line, however the terminal wrapped it


def _summary(output: str) -> dict[str, str]:
    return {row[0]: row[1] for row in table_rows(output) if len(row) == 2}


def _import(invoke: Invoke, tmp_path: Path, project_id: int, files: dict[str, bytes]) -> None:
    tree = write_tree(tmp_path / f"tree-{project_id}", files)
    assert invoke("import", str(tree), "--project", str(project_id)).exit_code == 0


def test_sound_files_pass_and_nothing_changes(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    _import(invoke, tmp_path, seed.project_id, FILES)
    before = read_tree(settings.blob_dir)

    result = invoke("check")

    assert result.exit_code == 0, result.output
    assert _summary(result.output)["sound"] == "2"
    assert _summary(result.output)["missing, damaged or unreadable"] == "0"
    assert read_tree(settings.blob_dir) == before


def test_missing_and_damaged_files_are_named_with_the_versions_that_need_them(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    _import(invoke, tmp_path, seed.project_id, FILES)
    store = LocalBlobStore(settings.blob_dir)
    damaged = store.local_path(_sha(FILES["claim.txt"]))
    missing = store.local_path(_sha(FILES["defence.txt"]))
    assert damaged is not None and missing is not None
    damaged.chmod(0o644)
    damaged.write_bytes(b"X" * len(FILES["claim.txt"]))  # the same size, other bytes
    missing.unlink()

    result = invoke("check")

    assert result.exit_code == 1
    said = _said(result.output)
    assert f"{damaged.name}: damaged: 20 bytes that do not match its SHA-256; needed by" in said
    assert "'claim.txt'" in said and "'copy of claim.txt'" in said
    assert f"{missing.name}: missing from the blob store; needed by project" in said
    assert "'defence.txt'" in said
    assert _summary(result.output)["missing, damaged or unreadable"] == "2"
    assert damaged.read_bytes() == b"X" * 20  # reported, not touched


def _unreadable(path: Path) -> None:
    """Make a stored file unreadable as a failing disk would (a folder in its place: every
    read fails with an error other than "no such file")."""
    path.chmod(0o644)
    path.unlink()
    path.mkdir()


def test_a_file_that_cannot_be_read_is_reported_and_the_rest_still_checked(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    _import(invoke, tmp_path, seed.project_id, FILES)
    store = LocalBlobStore(settings.blob_dir)
    unreadable = store.local_path(_sha(FILES["claim.txt"]))
    assert unreadable is not None
    _unreadable(unreadable)

    result = invoke("check")

    assert result.exit_code == 1
    said = _said(result.output)
    assert f"{unreadable.name}: cannot be read: Is a directory; needed by" in said
    summary = _summary(result.output)
    assert summary["missing, damaged or unreadable"] == "1"
    assert summary["sound"] == "1"  # the other one was read and found sound


def test_project_limits_the_check_to_its_files(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    async def second(db: Database, blobs: BlobStore) -> int:
        async with db.write() as session:
            return (await projects.create(session, who=seed.operator, name="Other")).id

    other = in_db(settings, second)
    assert isinstance(other, int)
    _import(invoke, tmp_path, seed.project_id, {"ours.txt": b"ours"})
    _import(invoke, tmp_path, other, {"theirs.txt": b"theirs"})
    theirs = LocalBlobStore(settings.blob_dir).local_path(_sha(b"theirs"))
    assert theirs is not None
    theirs.unlink()

    ours_only = invoke("check", "--project", str(seed.project_id))
    assert ours_only.exit_code == 0, ours_only.output
    assert _summary(ours_only.output)["sound"] == "1"
    theirs_only = invoke("check", "--project", str(other))
    assert theirs_only.exit_code == 1
    assert "'theirs.txt'" in _said(theirs_only.output)
    unknown = invoke("check", "--project", str(other + 1))
    assert unknown.exit_code == 1
    assert f"There is no project {other + 1}." in _said(unknown.output)


@pytest.mark.s3
def test_an_object_missing_from_the_bucket_is_found(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path, s3_endpoint: str
) -> None:
    prefix = f"t-check-{seed.project_id}-{tmp_path.name}"
    s3 = {
        "blob_store": f"s3://{BUCKET}/{prefix}",
        "s3_endpoint_url": s3_endpoint,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
    }
    tree = write_tree(tmp_path / "tree", FILES)
    assert invoke("import", str(tree), "--project", str(seed.project_id), **s3).exit_code == 0
    assert invoke("check", **s3).exit_code == 0
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ).delete_object(Bucket=BUCKET, Key=f"{prefix}/{blob_key(_sha(FILES['defence.txt']))}")

    result = invoke("check", **s3)

    assert result.exit_code == 1
    assert "missing from the blob store; needed by" in _said(result.output)
    assert _summary(result.output)["sound"] == "1"
