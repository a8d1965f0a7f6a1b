"""Export a project to disk: its folder tree, each document's current version, a manifest.

Bytes stream from the blob store into a temp file next to their target while being
hashed; a file only gets its final name when its SHA-256 and size match the version
row, so an export never silently contains damaged content.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import anyio
import anyio.to_thread
from anyio.abc import ObjectReceiveStream
from sqlalchemy import func, select

from casefolio.db.engine import Database
from casefolio.db.live import LIVE
from casefolio.db.models import Document, DocumentVersion, Folder
from casefolio.db.types import rfc3339, utcnow
from casefolio.domain import access, events, text
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.domain.transfer import (
    MANIFEST,
    FileEvent,
    Listener,
    Planned,
    TransferReport,
    describe,
    prepare_destination,
)
from casefolio.storage.base import BlobStore

_PAGE = 1000


#: The longest name ext4, XFS and most other file systems take, in bytes.
NAME_MAX_BYTES = 255
#: The longest path Linux takes, in bytes, its final NUL included.
PATH_MAX_BYTES = 4096
_TOO_DEEP = (
    f"its folder's path is longer than the file system takes ({PATH_MAX_BYTES:,} bytes); "
    "export into a folder with a shorter path, or shorten the folders' names"
)


def disk_name(name: str, used: set[str]) -> str:
    """Given a folder or file name from the database, return a name for it on disk that stays
    inside its folder, fits in NAME_MAX_BYTES (a name of 255 characters may take 1,020
    bytes: the part before the extension is cut), and is not in `used` (else `stem (2).ext`,
    `stem (3).ext`, …); mark it used."""
    cleaned = "".join("_" if c in "/\\\x00" else c for c in name).strip()
    if cleaned in ("", ".", ".."):
        cleaned = "_" + cleaned
    stem, extension = text.split_extension(cleaned)
    n = 1
    while True:
        tail = (f" ({n})" if n > 1 else "") + extension
        room = NAME_MAX_BYTES - len(tail.encode())
        candidate = stem.encode()[:room].decode(errors="ignore").rstrip() + tail
        if candidate not in used:
            used.add(candidate)
            return candidate
        n += 1


@dataclass(frozen=True)
class _Job:
    path: PurePosixPath
    document_id: int
    version: DocumentVersion


class _Exporter:
    def __init__(self, blobs: BlobStore, dest: Path, listener: Listener) -> None:
        self.blobs, self.dest, self.listener = blobs, dest, listener
        self.report = TransferReport()
        self.manifest: list[dict[str, Any]] = []
        self.used: dict[PurePosixPath, set[str]] = {PurePosixPath("."): {MANIFEST}}
        self.folder_path: dict[int | None, PurePosixPath] = {None: PurePosixPath(".")}
        #: Folders whose path leaves no room for a file name under it: not made, their
        #: files reported as failed, rather than the whole export failing.
        self.too_deep: set[PurePosixPath] = set()

    def emit(self, event: FileEvent) -> None:
        self.report.record(event)
        self.listener(event)

    def plan_folders(self, rows: list[Folder]) -> None:
        """Give every folder a path; parents are placed before their children."""
        children: dict[int | None, list[Folder]] = {}
        for row in rows:
            children.setdefault(row.parent_id, []).append(row)
        room = PATH_MAX_BYTES - len(os.fsencode(self.dest.absolute())) - NAME_MAX_BYTES - 3
        pending: list[int | None] = [None]
        while pending:
            parent = pending.pop()
            base = self.folder_path[parent]
            for row in sorted(children.get(parent, []), key=lambda f: (f.name, f.id)):
                name = disk_name(row.name, self.used.setdefault(base, set()))
                path = self.folder_path[row.id] = base / name
                self.used[path] = set()
                if len(os.fsencode(path)) > room:
                    self.too_deep.add(path)
                pending.append(row.id)

    def job(self, folder_id: int | None, document_id: int, version: DocumentVersion) -> _Job:
        base = self.folder_path[folder_id]
        name = disk_name(version.file_name, self.used.setdefault(base, set()))
        return _Job(base / name, document_id, version)

    async def work(self, inbox: ObjectReceiveStream[_Job]) -> None:
        async with inbox:
            async for job in inbox:
                if job.path.parent in self.too_deep:
                    self.emit(FileEvent(job.path.as_posix(), "failed", job.version.size, _TOO_DEEP))
                    continue
                try:
                    await self._write(job)
                except Exception as exc:
                    self.emit(
                        FileEvent(job.path.as_posix(), "failed", job.version.size, describe(exc))
                    )
                    continue
                v = job.version
                self.manifest.append(
                    {
                        "path": job.path.as_posix(),
                        "documentId": job.document_id,
                        "versionId": v.id,
                        "sha256": v.sha256,
                        "size": v.size,
                        "contentType": v.content_type,
                    }
                )
                self.emit(FileEvent(job.path.as_posix(), "exported", v.size))

    async def _write(self, job: _Job) -> None:
        target = self.dest / job.path
        fd, name = await anyio.to_thread.run_sync(_temp_beside, target)
        out = os.fdopen(fd, "wb")
        digest = hashlib.sha256()
        size = 0
        try:
            async for chunk in self.blobs.read(job.version.sha256):
                size += len(chunk)
                await anyio.to_thread.run_sync(_write_hashed, out, digest, chunk)
            await anyio.to_thread.run_sync(out.close)
            if digest.hexdigest() != job.version.sha256 or size != job.version.size:
                raise ValueError(
                    f"content does not match the stored sha256/size "
                    f"(got {digest.hexdigest()[:12]}…, {size} bytes)"
                )
            await anyio.to_thread.run_sync(os.replace, name, target)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_discard, out, name)
            raise


def _process_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import: reading it means setting it, which must not race with other threads
# creating files.
_FILE_MODE = 0o666 & ~_process_umask()


def _temp_beside(target: Path) -> tuple[int, str]:
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".export-", suffix=".part")
    # mkstemp makes it 0600; exported files get the mode any new file would (the umask's).
    os.fchmod(fd, _FILE_MODE)
    return fd, name


def _write_hashed(out: IO[bytes], digest: Any, chunk: bytes) -> None:
    digest.update(chunk)
    out.write(chunk)


def _discard(out: IO[bytes], name: str) -> None:
    out.close()
    Path(name).unlink(missing_ok=True)


def _write_manifest(dest: Path, project_id: int, entries: list[dict[str, Any]]) -> None:
    document = {
        "projectId": project_id,
        "exportedAt": rfc3339(utcnow()),
        "files": sorted(entries, key=lambda e: str(e["path"])),
    }
    # A fresh name beside it, as every exported file gets: a fixed one could be the name of
    # an exported document (".manifest.json.part" was, and was replaced by the manifest).
    fd, tmp = _temp_beside(dest / MANIFEST)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, dest / MANIFEST)


async def export_project(
    db: Database,
    blobs: BlobStore,
    *,
    who: Principal,
    project_id: int,
    dest: Path,
    concurrency: int = 8,
    on_plan: Planned = lambda files, size: None,
    on_file: Listener = lambda event: None,
) -> TransferReport:
    """Write the project's folders and current versions under `dest` (new or empty), plus
    `manifest.json`. A file that cannot be written or fails its check is reported, not raised.
    """
    started = time.monotonic()
    exporter = _Exporter(blobs, dest, on_file)
    async with db.read() as session:
        await access.scope(session, who, project_id, Capability.DOCUMENTS_READ)
        rows = list(await session.scalars(select(Folder).where(Folder.project_id == project_id)))
        current = select(func.count(), func.coalesce(func.sum(DocumentVersion.size), 0)).join(
            Document, Document.current_version_id == DocumentVersion.id
        )
        count, total = (
            await session.execute(current.where(Document.project_id == project_id, LIVE))
        ).one()
    exporter.plan_folders(rows)
    folder_dirs = [
        p
        for p in exporter.folder_path.values()
        if p != PurePosixPath(".") and p not in exporter.too_deep
    ]
    await anyio.to_thread.run_sync(prepare_destination, dest, folder_dirs)
    where = await anyio.to_thread.run_sync(os.path.abspath, dest)
    # A read of every file at once, audited as a download is (outbound/audit.py), before the
    # first file is written.
    async with db.write() as session:
        events.emit(
            session,
            events.ProjectExported(
                project_id=project_id,
                details={"documents": int(count), "bytes": int(total), "destination": where},
            ),
        )
    on_plan(int(count), int(total))
    send, receive = anyio.create_memory_object_stream[_Job](concurrency * 2)
    async with anyio.create_task_group() as tg:
        async with receive:
            for _ in range(max(concurrency, 1)):
                tg.start_soon(exporter.work, receive.clone())
        async with send:
            after = 0
            while True:
                async with db.read() as session:
                    page = list(
                        await session.execute(
                            select(Document.id, Document.folder_id, DocumentVersion)
                            .join(
                                DocumentVersion, DocumentVersion.id == Document.current_version_id
                            )
                            .where(Document.project_id == project_id, Document.id > after, LIVE)
                            .order_by(Document.id)
                            .limit(_PAGE)
                        )
                    )
                for document_id, folder_id, version in page:
                    await send.send(exporter.job(folder_id, document_id, version))
                if len(page) < _PAGE:
                    break
                after = page[-1][0]
    await anyio.to_thread.run_sync(_write_manifest, dest, project_id, exporter.manifest)
    exporter.report.seconds = time.monotonic() - started
    return exporter.report
