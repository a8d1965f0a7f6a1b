"""`casefolio import` and `casefolio export` against the test database and a local blob store."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import AuditEntry, Document, DocumentVersion, Folder
from casefolio.domain import (
    access,
    fields,
    folders,
    grants,
    import_sources,
    importing,
    intake,
    users,
)
from casefolio.domain.documents import DocumentView
from casefolio.domain.intake import Filed, NewFile
from casefolio.domain.roles import READ_ONLY, READ_WRITE, Capability
from casefolio.storage import BlobStore, LocalBlobStore, SpooledFile
from casefolio.storage.base import BlobsNotStored
from tests.cli.conftest import Invoke, Seed, in_db, read_tree, spool, table_rows, write_tree

TREE = {
    "summary.txt": b"case summary",
    "Pleadings/claim.pdf": b"%PDF claim",
    "Pleadings/defence.pdf": b"%PDF defence",
    "Pleadings/Drafts/draft 1.docx": b"draft one",
    "Evidence/photo.jpg": os.urandom(100_000),
    "Evidence/summary-copy.txt": b"case summary",  # same bytes, other folder: imported too
}


def _catalogue(settings: Settings, project_id: int) -> dict[str, str]:
    """Map `folder/path/file name` to the sha256 of every document in the project."""

    async def work(db: Database, blobs: BlobStore) -> dict[str, str]:
        async with db.read() as session:
            rows = list(
                await session.scalars(select(Folder).where(Folder.project_id == project_id))
            )
            by_id = {f.id: f for f in rows}

            def path(folder_id: int | None) -> str:
                parts: list[str] = []
                while folder_id is not None:
                    parts.append(by_id[folder_id].name)
                    folder_id = by_id[folder_id].parent_id
                return "/".join(reversed(parts))

            found = (
                await session.execute(
                    select(
                        Document.folder_id,
                        DocumentVersion.file_name,
                        DocumentVersion.sha256,
                        Document.current_sha256,
                    )
                    .join(DocumentVersion, DocumentVersion.id == Document.current_version_id)
                    .where(Document.project_id == project_id)
                )
            ).all()
            # The document's own copy of its current content's hash (what a rejectDuplicate
            # upload looks for) is that of its current version, for each file of a batch.
            assert [row.current_sha256 for row in found] == [row.sha256 for row in found]
            return {
                "/".join(p for p in (path(folder_id), name) if p): sha
                for folder_id, name, sha, _ in found
            }

    result = in_db(settings, work)
    assert isinstance(result, dict)
    return result


async def _file(
    session: AsyncSession,
    seed: Seed,
    blobs: BlobStore,
    data: bytes,
    name: str,
    folder_id: int | None = None,
) -> tuple[DocumentView, Filed]:
    """Upload `data` as `name` into the seed's project (under `folder_id`), as the operator."""
    return await intake.upload(
        session,
        who=seed.operator,
        project_id=seed.project_id,
        blobs=blobs,
        received=NewFile(spool(blobs, data), name),
        folder_id=folder_id,
    )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


COUNTED = ("new", "new versions", "unchanged", "failed", "missing (kept)")


def counts(output: str) -> dict[str, int]:
    """The file counts of an import's summary table."""
    rows = {row[0]: row[1] for row in table_rows(output) if len(row) == 2}
    return {label: int(rows[label].replace(",", "")) for label in COUNTED}


def test_rerun_after_changes_is_a_sync(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", TREE)
    assert invoke("import", str(source), "--project", str(seed.project_id)).exit_code == 0
    changed, gone = sorted(TREE)[:2]
    (source / changed).write_bytes(b"amended")
    (source / gone).unlink()
    again = invoke("import", str(source), "--project", str(seed.project_id))
    assert again.exit_code == 0, again.output
    assert counts(again.output) == {
        "new": 0,
        "new versions": 1,
        "unchanged": len(TREE) - 2,
        "failed": 0,
        "missing (kept)": 1,
    }
    assert f"missing {gone}: not in the tree; kept" in again.output

    async def versions(db: Database, blobs: BlobStore) -> dict[str, list[str]]:
        async with db.read() as session:
            rows = await session.execute(
                select(Document.title, DocumentVersion.sha256)
                .join(DocumentVersion, DocumentVersion.document_id == Document.id)
                .where(Document.project_id == seed.project_id)
                .order_by(Document.title, DocumentVersion.number)
            )
            found: dict[str, list[str]] = {}
            for title, sha256 in rows:
                found.setdefault(title, []).append(sha256)
            return found

    history = in_db(settings, versions)
    assert isinstance(history, dict)
    # Every file is one document still: the changed one has two versions, the gone one stays.
    assert sorted(history) == sorted(PurePosixPath(k).name for k in TREE)
    assert history[PurePosixPath(changed).name] == [_sha(TREE[changed]), _sha(b"amended")]
    assert history[PurePosixPath(gone).name] == [_sha(TREE[gone])]

    # Nothing changed since: everything is unchanged, the gone file is reported again.
    third = invoke("import", str(source), "--project", str(seed.project_id))
    assert counts(third.output) | {"unchanged": len(TREE) - 1, "missing (kept)": 1} == counts(
        third.output
    )


def test_an_unknown_project_is_one_line_without_a_progress_bar(
    invoke: Invoke, seed: Seed, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", {"a.txt": b"a"})
    result = invoke("import", str(source), "--project", "999")
    assert result.exit_code == 1
    assert result.output.splitlines() == ["Project 999 not found."]
    exported = invoke("export", str(tmp_path / "out"), "--project", "999")
    assert exported.output.splitlines() == ["Project 999 not found."]


def test_exported_files_get_the_mode_of_the_process_umask(
    invoke: Invoke, seed: Seed, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", {"a.txt": b"a", "d/b.txt": b"b"})
    assert invoke("import", str(source), "--project", str(seed.project_id)).exit_code == 0
    mask = os.umask(0o022)
    os.umask(mask)
    out = tmp_path / "out"
    assert invoke("export", str(out), "--project", str(seed.project_id)).exit_code == 0
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()}
    assert modes == dict.fromkeys(["a.txt", "b.txt", "manifest.json"], 0o666 & ~mask)


def test_import_recreates_the_tree_and_stores_every_file(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", TREE, empty_dirs=("Correspondence",))
    result = invoke("import", str(source), "--project", str(seed.project_id))
    assert result.exit_code == 0, result.output
    assert _catalogue(settings, seed.project_id) == {k: _sha(v) for k, v in TREE.items()}
    for label in ("files/s", "MB/s", "Summary", "seconds"):
        assert label in result.output
    assert counts(result.output) == {
        "new": 6,
        "new versions": 0,
        "unchanged": 0,
        "failed": 0,
        "missing (kept)": 0,
    }

    async def check(db: Database, blobs: BlobStore) -> None:
        async with db.read() as session:
            scope = await access.scope(
                session, seed.operator, seed.project_id, Capability.DOCUMENTS_READ
            )
            empty = await folders.find_child(
                session, scope=scope, parent_id=None, name="Correspondence"
            )
            assert empty is not None
        for data in TREE.values():
            stored = b"".join([c async for c in blobs.read(_sha(data))])
            assert stored == data

    in_db(settings, check)
    assert list(LocalBlobStore(settings.blob_dir).staging_dir.iterdir()) == []


def test_rerun_skips_everything_already_there(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", TREE)
    assert invoke("import", str(source), "--project", str(seed.project_id)).exit_code == 0
    (source / "Evidence" / "new.txt").write_bytes(b"arrived later")
    again = invoke("import", str(source), "--project", str(seed.project_id))
    assert again.exit_code == 0, again.output
    assert counts(again.output) | {"new": 1, "unchanged": 6} == counts(again.output)
    catalogue = _catalogue(settings, seed.project_id)
    assert len(catalogue) == len(TREE) + 1 and catalogue["Evidence/new.txt"] == _sha(
        b"arrived later"
    )


def test_identical_files_under_different_names_are_separate_documents(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    same = b"%PDF signed engagement letter"
    tree = {
        "Letters/engagement.pdf": same,
        "Letters/engagement (signed copy).pdf": same,
        "engagement.pdf": same,
    }
    source = write_tree(tmp_path / "src", tree)
    result = invoke("import", str(source), "--project", str(seed.project_id))
    assert result.exit_code == 0, result.output
    assert _catalogue(settings, seed.project_id) == {k: _sha(v) for k, v in tree.items()}

    # Re-running knows each of them; a renamed copy is a new file.
    (source / "Letters" / "engagement.pdf").rename(source / "Letters" / "engagement-v1.pdf")
    again = invoke("import", str(source), "--project", str(seed.project_id))
    assert again.exit_code == 0, again.output
    assert counts(again.output) == {
        "new": 1,
        "new versions": 0,
        "unchanged": 2,
        "failed": 0,
        "missing (kept)": 1,
    }
    assert "missing Letters/engagement.pdf: not in the tree; kept" in again.output
    assert _catalogue(settings, seed.project_id) == {
        k: _sha(same) for k in [*tree, "Letters/engagement-v1.pdf"]
    }


def test_a_bad_file_is_reported_and_the_rest_lands(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", {"ok.txt": b"fine", "docs/big.bin": b"x" * 2000})
    (source / "docs" / "gone.pdf").symlink_to(tmp_path / "nowhere")
    result = invoke(
        "import", str(source), "--project", str(seed.project_id), max_upload_bytes="1000"
    )
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())  # undo rich's line wrapping
    assert "failed docs/big.bin: larger than the maximum of 1000 bytes" in out
    assert "failed docs/gone.pdf: No such file or directory" in out
    assert "2 file(s) failed" in out
    assert _catalogue(settings, seed.project_id) == {"ok.txt": _sha(b"fine")}


def test_links_within_the_tree_are_filed_and_the_others_reported(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "elsewhere" / "passwd"
    secret.parent.mkdir()
    secret.write_bytes(b"root:x:0:0")
    source = write_tree(tmp_path / "src", {"summary.txt": b"summary", "Evidence/a.pdf": b"a"})
    (source / "Evidence" / "summary-link.txt").symlink_to("../summary.txt")
    (source / "passwd").symlink_to(secret)
    (source / "Mirror").symlink_to("Evidence", target_is_directory=True)
    (source / "loop-a").symlink_to("loop-b")
    (source / "loop-b").symlink_to("loop-a")

    result = invoke("import", str(source), "--project", str(seed.project_id))

    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert (
        "failed passwd: a link to a file outside the directory being imported; not followed" in out
    )
    assert "failed Mirror: a link to a directory; not followed" in out
    assert "failed loop-a:" in out and "failed loop-b:" in out
    assert "4 file(s) failed" in out
    assert _catalogue(settings, seed.project_id) == {
        "summary.txt": _sha(b"summary"),
        "Evidence/a.pdf": _sha(b"a"),
        "Evidence/summary-link.txt": _sha(b"summary"),
    }


def test_a_file_that_became_a_link_after_the_scan_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for the store")
    path = tmp_path / "tree" / "file.txt"
    path.parent.mkdir()
    path.write_bytes(b"scanned")
    (source,) = import_sources.scan_tree(path.parent).files
    path.unlink()
    path.symlink_to(secret)
    staging = tmp_path / "staging"
    staging.mkdir()

    (result,) = import_sources.stage_all([source], staging, max_bytes=1000)

    assert isinstance(result, OSError)
    assert list(staging.iterdir()) == []


def test_import_reuses_folders_and_honours_folder_option(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    async def make(db: Database, blobs: BlobStore) -> tuple[int, int]:
        async with db.write() as session:
            scope = await access.scope(
                session, seed.operator, seed.project_id, Capability.FOLDERS_WRITE
            )
            matter = await folders.create(session, scope=scope, name="Matter")
            inner = await folders.create(
                session, scope=scope, name="Pleadings", parent_id=matter.id
            )
            return matter.id, inner.id

    matter_id, pleadings_id = in_db(settings, make)  # type: ignore[misc]
    source = write_tree(tmp_path / "src", {"Pleadings/claim.pdf": b"claim", "top.txt": b"top"})
    result = invoke(
        "import", str(source), "--project", str(seed.project_id), "--folder", str(matter_id)
    )
    assert result.exit_code == 0, result.output
    assert _catalogue(settings, seed.project_id) == {
        "Matter/Pleadings/claim.pdf": _sha(b"claim"),
        "Matter/top.txt": _sha(b"top"),
    }

    async def count(db: Database, blobs: BlobStore) -> list[int]:
        async with db.read() as session:
            return list(await session.scalars(select(Folder.id).order_by(Folder.id)))

    assert in_db(settings, count) == [matter_id, pleadings_id]


def test_import_acts_with_the_given_users_rights(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    async def make(db: Database, blobs: BlobStore) -> None:
        async with db.write() as session:
            new = [users.NewUser(f"{n}@example.com", n) for n in ("reader", "writer", "outsider")]
            made = await users.create_many(session, new_users=new)
            await grants.set_user_grant(
                session, project_id=seed.project_id, user_id=made[0].id, role=READ_ONLY
            )
            await grants.set_user_grant(
                session, project_id=seed.project_id, user_id=made[1].id, role=READ_WRITE
            )

    in_db(settings, make)
    source = write_tree(tmp_path / "src", {"a/b.txt": b"b"})
    project = str(seed.project_id)
    outsider = invoke("import", str(source), "--project", project, "--as", "outsider@example.com")
    assert outsider.exit_code == 1 and f"Project {project} not found" in outsider.output
    reader = invoke("import", str(source), "--project", project, "--as", "reader@example.com")
    assert reader.exit_code == 1 and "does not include documents.write" in reader.output
    assert _catalogue(settings, seed.project_id) == {}
    writer = invoke("import", str(source), "--project", project, "--as", "writer@example.com")
    assert writer.exit_code == 0, writer.output

    async def creators(db: Database, blobs: BlobStore) -> set[str]:
        async with db.read() as session:
            user = await users.get_by_email(session, email="writer@example.com")
            ids = set(await session.scalars(select(Document.created_by)))
            return {"writer" if i == user.id else str(i) for i in ids}

    assert in_db(settings, creators) == {"writer"}


def test_export_round_trips_an_import_with_a_correct_manifest(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", TREE, empty_dirs=("Correspondence",))
    assert invoke("import", str(source), "--project", str(seed.project_id)).exit_code == 0
    out = tmp_path / "out"
    result = invoke("export", "--project", str(seed.project_id), str(out))
    assert result.exit_code == 0, result.output
    assert "exported" in result.output and "files/s" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    exported = read_tree(out)
    del exported["manifest.json"]
    assert exported == TREE
    assert (out / "Correspondence").is_dir()
    assert manifest["projectId"] == seed.project_id
    # As docs/cli.md shows it, and as the API writes times: milliseconds, not microseconds.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", manifest["exportedAt"])

    async def rows(db: Database, blobs: BlobStore) -> dict[str, tuple[int, int, str]]:
        async with db.read() as session:
            found = await session.execute(
                select(Document.id, DocumentVersion).join(
                    DocumentVersion, DocumentVersion.id == Document.current_version_id
                )
            )
            return {v.sha256 + v.file_name: (d, v.id, v.content_type) for d, v in found}

    by_key = in_db(settings, rows)
    assert isinstance(by_key, dict)
    assert [f["path"] for f in manifest["files"]] == sorted(TREE)
    for entry in manifest["files"]:
        data = TREE[entry["path"]]
        assert entry["sha256"] == _sha(data) and entry["size"] == len(data)
        name = entry["path"].rsplit("/", 1)[-1]
        assert (entry["documentId"], entry["versionId"], entry["contentType"]) == by_key[
            entry["sha256"] + name
        ]
    photo = next(f for f in manifest["files"] if f["path"] == "Evidence/photo.jpg")
    assert photo["contentType"] == "image/jpeg"


def test_export_writes_current_versions_and_deduplicates_names(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    async def make(db: Database, blobs: BlobStore) -> None:
        async with db.write() as session:
            for data in (b"first", b"second"):
                await _file(session, seed, blobs, data, "notes.txt")
            view, _ = await _file(session, seed, blobs, b"v1", "order.pdf")
            await intake.replace(
                session,
                who=seed.operator,
                document_id=view.document.id,
                blobs=blobs,
                received=NewFile(spool(blobs, b"v2 sealed"), "order-sealed.pdf"),
            )

    in_db(settings, make)
    out = tmp_path / "out"
    assert invoke("export", "--project", str(seed.project_id), str(out)).exit_code == 0
    exported = read_tree(out)
    del exported["manifest.json"]
    assert exported == {
        "notes.txt": b"first",
        "notes (2).txt": b"second",
        "order-sealed.pdf": b"v2 sealed",
    }


def test_export_fits_long_names_in_the_file_system_s_255_bytes(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    folder_name = "日" * 150  # 150 characters, 450 bytes in UTF-8
    file_name = "文" * 150 + ".pdf"

    async def make(db: Database, blobs: BlobStore) -> None:
        async with db.write() as session:
            scope = await access.scope(
                session, seed.operator, seed.project_id, Capability.FOLDERS_WRITE
            )
            folder = await folders.create(session, scope=scope, name=folder_name)
            for data in (b"first", b"second"):
                await _file(session, seed, blobs, data, file_name, folder.id)

    in_db(settings, make)
    out = tmp_path / "out"
    result = invoke("export", "--project", str(seed.project_id), str(out))

    assert result.exit_code == 0, result.output
    exported = read_tree(out)
    manifest = json.loads(exported.pop("manifest.json"))
    assert sorted(exported.values()) == [b"first", b"second"]
    assert sorted(f["path"] for f in manifest["files"]) == sorted(exported)
    for path in exported:
        folder, name = path.split("/")
        assert folder_name.startswith(folder) and len(folder.encode()) <= 255
        assert name.endswith(".pdf") and len(name.encode()) <= 255
    # 83 three-byte characters and ".pdf" are 253 bytes; with " (2)" 82 of them fit.
    assert {path.split("/")[1] for path in exported} == {"文" * 83 + ".pdf", "文" * 82 + " (2).pdf"}


def test_export_reports_the_files_of_folders_too_deep_for_a_path_and_writes_the_rest(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    long_name = "日" * 85  # 255 bytes: 16 such folders are past Linux's 4,096-byte paths

    async def make(db: Database, blobs: BlobStore) -> None:
        async with db.write() as session:
            scope = await access.scope(
                session, seed.operator, seed.project_id, Capability.FOLDERS_WRITE
            )
            parent: int | None = None
            for depth in range(1, 21):
                parent = (
                    await folders.create(session, scope=scope, name=long_name, parent_id=parent)
                ).id
                if depth in (2, 20):
                    await _file(
                        session, seed, blobs, f"at {depth}".encode(), f"d{depth}.txt", parent
                    )

    in_db(settings, make)
    out = tmp_path / "out"
    result = invoke("export", "--project", str(seed.project_id), str(out))

    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "20.txt: its folder's path is longer than the file system takes" in text
    assert "1 file(s) failed" in text
    exported = read_tree(out)
    manifest = json.loads(exported.pop("manifest.json"))
    assert exported == {f"{long_name}/{long_name}/d2.txt": b"at 2"}
    assert [f["path"] for f in manifest["files"]] == list(exported)


def test_export_refuses_a_non_empty_directory(invoke: Invoke, seed: Seed, tmp_path: Path) -> None:
    out = write_tree(tmp_path / "out", {"keep.txt": b"mine"})
    result = invoke("export", "--project", str(seed.project_id), str(out))
    assert result.exit_code == 1 and "not an empty directory" in result.output
    assert read_tree(out) == {"keep.txt": b"mine"}


def test_export_reports_a_blob_that_fails_its_check(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", {"good.txt": b"good", "bad.txt": b"bad"})
    assert invoke("import", str(source), "--project", str(seed.project_id)).exit_code == 0
    blob = LocalBlobStore(settings.blob_dir).local_path(_sha(b"bad"))
    assert blob is not None
    blob.write_bytes(b"BAD")  # bit rot: same size, other bytes
    out = tmp_path / "out"
    result = invoke("export", "--project", str(seed.project_id), str(out))
    assert result.exit_code == 1
    assert "failed bad.txt: content does not match" in " ".join(result.output.split())
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["path"] for f in manifest["files"]] == ["good.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["good.txt", "manifest.json"]


def test_import_refuses_a_project_with_required_fields_up_front(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    async def make(db: Database, blobs: BlobStore) -> None:
        async with db.write() as session:
            spec = fields.FieldSpec(name="Custodian", type="text", required=True)
            scope = await access.scope(
                session, seed.operator, seed.project_id, Capability.SETTINGS_MANAGE
            )
            await fields.create(session, scope=scope, spec=spec)

    in_db(settings, make)
    source = write_tree(tmp_path / "src", {"a.txt": b"a"})
    result = invoke("import", str(source), "--project", str(seed.project_id))
    assert result.exit_code == 1 and "Required field(s) missing: Custodian" in result.output
    assert "Summary" not in result.output
    assert [p for p in settings.blob_dir.rglob("*") if p.is_file() and p.suffix != ".lock"] == []
    assert _catalogue(settings, seed.project_id) == {}


def test_files_whose_blobs_were_not_stored_fail_and_get_no_row(
    invoke: Invoke,
    seed: Seed,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small files are stored in batches by put_many, big ones one by one by put;
    # a blob the store could not make durable must never get a document row.
    big = os.urandom(importing.PUT_ALONE_BYTES + 10)
    tree = {"a.txt": b"alpha", "b.txt": b"bravo", "big.bin": big}
    source = write_tree(tmp_path / "src", tree)
    real = LocalBlobStore.put_many

    async def flaky(self: LocalBlobStore, spooled: Sequence[SpooledFile]) -> None:
        keep = [s for s in spooled if s.sha256 != _sha(b"bravo")]
        lost = [s for s in spooled if s.sha256 == _sha(b"bravo")]
        for s in lost:
            s.path.unlink()
        await real(self, keep)
        if lost:
            raise BlobsNotStored({s.sha256: OSError(5, "Input/output error") for s in lost})

    monkeypatch.setattr(LocalBlobStore, "put_many", flaky)
    result = invoke("import", str(source), "--project", str(seed.project_id))
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "failed b.txt: blob store: Input/output error" in out
    assert _catalogue(settings, seed.project_id) == {"a.txt": _sha(b"alpha"), "big.bin": _sha(big)}
    assert list(LocalBlobStore(settings.blob_dir).staging_dir.iterdir()) == []

    monkeypatch.setattr(LocalBlobStore, "put_many", real)
    again = invoke("import", str(source), "--project", str(seed.project_id))
    assert again.exit_code == 0, again.output
    assert counts(again.output)["new"] == 1  # resumes with the lost one
    assert _catalogue(settings, seed.project_id)["b.txt"] == _sha(b"bravo")


def test_a_directory_named_in_another_encoding_is_reported_and_the_rest_imported(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    """A Latin-1 folder name from an old file server: not UTF-8, so it cannot be a folder's
    name; its files are reported failed with why, the other files are filed."""
    source = tmp_path / "src"
    latin1 = os.fsdecode(b"Schrifts\xe4tze")  # what Python makes of the bytes: a surrogate
    (source / latin1).mkdir(parents=True)
    (source / latin1 / "claim.txt").write_bytes(b"claim")
    (source / "letter.txt").write_bytes(b"letter")
    result = invoke("import", str(source), "--project", str(seed.project_id))
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "failed Schrifts\ufffdtze/claim.txt: folder not created" in said
    assert "the byte 0xE4 of a name that is not UTF-8" in said
    assert _catalogue(settings, seed.project_id) == {"letter.txt": _sha(b"letter")}


def _audit(settings: Settings, action: str) -> list[AuditEntry]:
    async def work(db: Database, blobs: BlobStore) -> list[AuditEntry]:
        async with db.read() as session:
            found = await session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
            return list(found)

    entries = in_db(settings, work)
    assert isinstance(entries, list)
    return entries


def test_an_export_is_audited_in_the_name_of_the_user_it_acts_as(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    async def make_reader(db: Database, blobs: BlobStore) -> int:
        async with db.write() as session:
            [reader] = await users.create_many(
                session, new_users=[users.NewUser("reader@example.com", "Reader")]
            )
            await grants.set_user_grant(
                session, project_id=seed.project_id, user_id=reader.id, role=READ_ONLY
            )
            return reader.id

    reader_id = in_db(settings, make_reader)
    source = write_tree(tmp_path / "src", {"a.txt": b"alpha", "b/c.txt": b"gamma!"})
    assert invoke("import", str(source), "--project", str(seed.project_id)).exit_code == 0
    imported = _audit(settings, "document.created")
    assert len(imported) == 2
    # The command acts as the first operator by default, and the trail names them.
    assert {(e.actor_kind, e.actor_user_id) for e in imported} == {("cli", seed.operator.user_id)}

    refused = invoke("export", "--project", str(seed.project_id), str(source))
    assert refused.exit_code == 1 and "not an empty directory" in refused.output
    assert _audit(settings, "project.exported") == []  # nothing was read

    out = tmp_path / "out"
    as_reader = ("--as", "reader@example.com")
    exported = invoke("export", "--project", str(seed.project_id), str(out), *as_reader)
    assert exported.exit_code == 0, exported.output
    [entry] = _audit(settings, "project.exported")
    assert (entry.actor_kind, entry.actor_user_id) == ("cli", reader_id)
    assert (entry.project_id, entry.target_type, entry.target_id) == (
        seed.project_id,
        "project",
        seed.project_id,
    )
    assert entry.details == {"documents": 2, "bytes": 11, "destination": str(out)}


def test_documents_named_like_the_export_s_own_files_are_exported_too(
    invoke: Invoke, seed: Seed, tmp_path: Path
) -> None:
    tree = {".manifest.json.part": b"a document", "manifest.json": b'{"mine": 1}', "x.txt": b"x"}
    source = write_tree(tmp_path / "src", tree)
    assert invoke("import", str(source), "--project", str(seed.project_id)).exit_code == 0
    out = tmp_path / "out"
    result = invoke("export", "--project", str(seed.project_id), str(out))
    assert result.exit_code == 0, result.output
    exported = read_tree(out)
    manifest = json.loads(exported.pop("manifest.json"))
    # The project's own manifest.json is exported beside the export's, renamed.
    assert exported == {
        ".manifest.json.part": b"a document",
        "manifest (2).json": b'{"mine": 1}',
        "x.txt": b"x",
    }
    assert sorted(f["path"] for f in manifest["files"]) == sorted(exported)


def test_a_rerun_finds_files_whose_directory_name_was_cleaned(
    invoke: Invoke, seed: Seed, tmp_path: Path
) -> None:
    """A directory " minutes " is filed as the folder "minutes": a second run finds its
    files there, rather than reporting them missing as well as unchanged."""
    source = write_tree(tmp_path / "src", {" minutes /board.txt": b"board minutes"})
    assert invoke("import", str(source), "--project", str(seed.project_id)).exit_code == 0
    again = invoke("import", str(source), "--project", str(seed.project_id))
    assert again.exit_code == 0, again.output
    assert "missing" not in again.output.replace("missing (kept)", ""), again.output
    assert counts(again.output).get("unchanged") == 1, again.output
    assert counts(again.output).get("missing (kept)", 0) == 0, again.output


def test_a_rerun_finds_a_directory_whose_name_is_decomposed(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    """A directory named as macOS names it, `Cafe` and a combining accent, is filed as the
    folder "Café" (NFC): a second run found no such folder, failed to create it again (one
    exists) and reported its files as failed."""
    source = write_tree(tmp_path / "src", {"Cafe\u0301/menu.txt": b"today's menu"})
    assert invoke("import", str(source), "--project", str(seed.project_id)).exit_code == 0
    assert _catalogue(settings, seed.project_id) == {"Caf\u00e9/menu.txt": _sha(b"today's menu")}
    again = invoke("import", str(source), "--project", str(seed.project_id))
    assert again.exit_code == 0, again.output
    assert counts(again.output) == dict.fromkeys(COUNTED, 0) | {"unchanged": 1}, again.output


def test_same_named_directories_under_other_parents_become_folders_of_their_own(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    tree = {"A/Exhibits/a.txt": b"a", "B/Exhibits/b.txt": b"b", "Exhibits/top.txt": b"top"}
    source = write_tree(tmp_path / "src", tree)
    for run in ("first", "rerun"):
        result = invoke("import", str(source), "--project", str(seed.project_id))
        assert result.exit_code == 0, (run, result.output)
        assert _catalogue(settings, seed.project_id) == {k: _sha(v) for k, v in tree.items()}
    assert counts(result.output)["unchanged"] == 3
