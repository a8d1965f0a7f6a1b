"""Bulk import of a directory tree into a project.

Import runs as a pipeline: worker tasks hash chunks of files into the blob store's
staging folder (one thread call per chunk, domain/import_sources.py); a storer task makes a
few hundred staged blobs durable with one `put_many` (on Linux, one syncfs for their data
and one for their names); only then does the writer task file them as documents, a few
hundred per transaction. Large files the workers `put` themselves right away.
A crash therefore leaves at most orphan blobs and staging files (which `casefolio gc`
removes). Import is a sync: re-running skips every file that is already a document in its
folder (same file name, same content), adds a changed file as a new version of the
document with its name there, and reports (never deletes) documents whose file is gone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import anyio
import anyio.to_thread
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.engine import Database
from casefolio.db.live import LIVE
from casefolio.db.models import Document, DocumentVersion, Folder
from casefolio.domain import access, fields, folders, intake
from casefolio.domain.access import ProjectScope
from casefolio.domain.errors import DomainError, NotFound
from casefolio.domain.import_sources import Scan, Source, chunks, scan_tree, stage_all, unlink_all
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.domain.transfer import (
    FileEvent,
    Listener,
    Outcome,
    Planned,
    TransferReport,
    describe,
)
from casefolio.storage.base import BlobsNotStored, BlobStore, SpooledFile

#: Documents filed per transaction: big enough to amortise the commit's fsync, small
#: enough that a failed batch costs little and other writers are not locked out long.
BATCH_SIZE = 400
#: Blobs stored per `put_many`, and how many such batches are stored at once: the bigger
#: the batch, the fewer flushes of the disk per file.
STORE_BATCH = 400
STORERS = 1
#: Staged bytes per batch at most: bounds the staging space a batch holds.
BATCH_BYTES = 64 * 1024 * 1024
#: Files at least this big are stored by their worker at once: their per-file fsyncs
#: are cheap next to their size, and they do not pile up in staging.
PUT_ALONE_BYTES = 1024 * 1024
#: Longest a partial batch waits for more files before it is committed anyway.
BATCH_SECONDS = 0.5


class _FileKey(NamedTuple):
    """A file as a re-run recognises it: its folder (0 for the root), name and content.

    The name counts too: two files with the same bytes under different names are two
    documents, as they were two files (and an export writes both back).
    """

    folder_id: int
    file_name: str
    sha256: str


@dataclass(frozen=True)
class _Ready:
    source: Source
    stored: intake.StoredFile
    spooled: SpooledFile | None  # still to be stored by a storer; None once stored
    document_id: int | None = None  # set: a new version of this document


class _Importer:
    """The state one import run shares between its worker tasks and its writer task."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        who: Principal,
        project_id: int,
        max_bytes: int,
        listener: Listener,
    ) -> None:
        self.db, self.blobs, self.who, self.project_id = db, blobs, who, project_id
        self.scope: ProjectScope  # set by prepare(), the run's access check
        self.max_bytes = max_bytes
        self.listener = listener
        self.report = TransferReport()
        # What is already filed in the target folders, plus what this run is filing: a file
        # whose key is here is skipped. About 150 bytes each.
        self.present: set[_FileKey] = set()
        # The newest document per (folder, file name): a changed file becomes its version.
        self.current: dict[tuple[int, str], int] = {}
        self.missing: list[FileEvent] = []
        self.folder_of: dict[PurePosixPath, int | None] = {}
        self.folder_problem: dict[PurePosixPath, str] = {}
        # Staged files not yet handed to the blob store, removed if the run is cancelled.
        self.staged: set[Path] = set()

    def emit(self, event: FileEvent) -> None:
        self.report.record(event)
        self.listener(event)

    async def prepare(self, scan: Scan, base_folder_id: int | None) -> None:
        """Check rights, find or create the folder tree, and load what is already there."""
        async with self.db.write() as session:
            self.scope = await access.scope(
                session, self.who, self.project_id, Capability.DOCUMENTS_WRITE
            )
            # Imported documents get no field values: refuse now, not batch by batch.
            await fields.resolve_values(session, scope=self.scope, values={}, for_new_document=True)
            if base_folder_id is not None:
                await folders.get(session, scope=self.scope, folder_id=base_folder_id)
            self.folder_of[PurePosixPath(".")] = base_folder_id
            existing: list[int | None] = [base_folder_id]
            for directory in scan.directories:
                await self._ensure_folder(session, directory, existing)
            await self._load_present(session, base_folder_id, scan)

    async def _ensure_folder(
        self, session: AsyncSession, directory: PurePosixPath, existing: list[int | None]
    ) -> None:
        parent = directory.parent
        if parent in self.folder_problem or parent not in self.folder_of:
            self.folder_problem[directory] = self.folder_problem.get(parent, "parent missing")
            return
        parent_id = self.folder_of[parent]
        found = await folders.find_child(
            session, scope=self.scope, parent_id=parent_id, name=directory.name
        )
        if found is not None:
            self.folder_of[directory] = found.id
            existing.append(found.id)
            return
        try:
            created = await folders.create(
                session, scope=self.scope, name=directory.name, parent_id=parent_id
            )
        except DomainError as exc:
            self.folder_problem[directory] = f"folder not created: {exc.message}"
            return
        self.folder_of[directory] = created.id

    async def _load_present(
        self, session: AsyncSession, base_folder_id: int | None, scan: Scan
    ) -> None:
        """Load the documents under the base folder, at any depth: what a re-run skips or
        versions, and which files are no longer in the tree."""
        children: dict[int | None, list[tuple[int, str]]] = {}
        for folder_id, parent_id, name in await session.execute(
            select(Folder.id, Folder.parent_id, Folder.name).where(
                Folder.project_id == self.project_id
            )
        ):
            children.setdefault(parent_id, []).append((folder_id, name))
        path_of: dict[int | None, PurePosixPath] = {base_folder_id: PurePosixPath(".")}
        todo = [base_folder_id]
        while todo:
            parent = todo.pop()
            for folder_id, name in children.get(parent, []):
                path_of[folder_id] = path_of[parent] / name
                todo.append(folder_id)
        in_tree = {_filed_path(s.relative) for s in scan.files}
        in_tree.update(PurePosixPath(p.path) for p in scan.problems)
        ids = [i for i in path_of if i is not None]
        where = [Document.folder_id.in_(ids[i : i + 500]) for i in range(0, len(ids), 500)]
        if base_folder_id is None:
            where.append(Document.folder_id.is_(None))
        for condition in where:
            rows = await session.execute(
                select(
                    Document.id,
                    Document.folder_id,
                    DocumentVersion.file_name,
                    DocumentVersion.sha256,
                    DocumentVersion.size,
                )
                .join(DocumentVersion, DocumentVersion.id == Document.current_version_id)
                .where(Document.project_id == self.project_id, condition, LIVE)
                .order_by(Document.id)
            )
            for document_id, in_folder, name, sha256, size in rows:
                self.present.add(_FileKey(in_folder or 0, name, sha256))
                self.current[(in_folder or 0, name)] = document_id  # the newest wins
                path = path_of[in_folder] / name
                if path not in in_tree:
                    self.missing.append(
                        FileEvent(
                            path.as_posix(), "missing", size, "not in the tree; kept", planned=False
                        )
                    )

    async def work(
        self, inbox: ObjectReceiveStream[list[Source]], out: ObjectSendStream[_Ready]
    ) -> None:
        """Worker task: stage chunks of files until the inbox runs dry."""
        async with out:
            async for chunk in inbox:
                for ready in await self._stage_chunk(chunk):
                    await out.send(ready)

    async def _stage_chunk(self, chunk: list[Source]) -> list[_Ready]:
        todo: list[tuple[Source, int | None, str]] = []
        for source in chunk:
            where = source.relative.as_posix()
            problem = self.folder_problem.get(source.relative.parent)
            if problem is not None:
                self.emit(FileEvent(where, "failed", source.size, problem))
                continue
            try:
                file_name = intake.clean_file_name(source.relative.name)
            except DomainError as exc:
                self.emit(FileEvent(where, "failed", source.size, describe(exc)))
                continue
            todo.append((source, self.folder_of[source.relative.parent], file_name))
        # One thread hop per chunk, not per file: with small files, handing the GIL
        # back and forth between threads would cost more than the work itself.
        results = await anyio.to_thread.run_sync(
            stage_all, [t[0] for t in todo], self.blobs.staging_dir, self.max_bytes
        )
        ready: list[_Ready] = []
        duplicates: list[Path] = []
        for (source, folder_id, file_name), spooled in zip(todo, results, strict=True):
            where = source.relative.as_posix()
            if isinstance(spooled, Exception):
                self.emit(FileEvent(where, "failed", source.size, describe(spooled)))
                continue
            key = _FileKey(folder_id or 0, file_name, spooled.sha256)
            if key in self.present:
                duplicates.append(spooled.path)
                self.emit(FileEvent(where, "skipped", spooled.size, "already in the folder"))
                continue
            self.present.add(key)
            document_id = self.current.get((folder_id or 0, file_name))
            stored = intake.StoredFile(folder_id, file_name, spooled.sha256, spooled.size)
            if spooled.size < PUT_ALONE_BYTES:
                self.staged.add(spooled.path)
                # a storer stores it
                ready.append(_Ready(source, stored, spooled, document_id))
                continue
            try:
                await self.blobs.put(spooled)  # durable before the writer files its row
            except Exception as exc:
                self.present.discard(key)
                self.emit(FileEvent(where, "failed", spooled.size, f"blob store: {exc}"))
                continue
            ready.append(_Ready(source, stored, None, document_id))
        if duplicates:
            await anyio.to_thread.run_sync(unlink_all, duplicates)
        return ready

    async def store(
        self, inbox: ObjectReceiveStream[_Ready], out: ObjectSendStream[_Ready]
    ) -> None:
        """Storer task: make staged blobs durable, STORE_BATCH per put_many; pass them on."""
        async with inbox, out:
            while batch := await _next_batch(inbox, STORE_BATCH):
                for ready in await self._store_batch(batch):
                    await out.send(ready)

    async def write(self, inbox: ObjectReceiveStream[_Ready]) -> None:
        """Writer task: file stored blobs as documents, BATCH_SIZE per transaction."""
        async with inbox:
            while batch := await _next_batch(inbox, BATCH_SIZE):
                await self._commit(batch)

    def _fail(self, ready: _Ready, message: str) -> None:
        stored = ready.stored
        self.present.discard(_FileKey(stored.folder_id or 0, stored.file_name, stored.sha256))
        self.emit(FileEvent(ready.source.relative.as_posix(), "failed", ready.source.size, message))

    async def _store_batch(self, batch: Sequence[_Ready]) -> list[_Ready]:
        """Make the batch's staged blobs durable; return the files whose blob is stored."""
        spooled = [r.spooled for r in batch if r.spooled is not None]
        if not spooled:
            return list(batch)
        self.staged.difference_update(s.path for s in spooled)  # put_many consumes them
        errors: dict[str, BaseException] = {}
        try:
            await self.blobs.put_many(spooled)
        except BlobsNotStored as exc:
            errors = exc.errors
        except Exception as exc:
            errors = {s.sha256: exc for s in spooled}  # none may be durable
        stored: list[_Ready] = []
        for r in batch:
            error = errors.get(r.stored.sha256) if r.spooled is not None else None
            if error is None:
                stored.append(r)
            else:
                self._fail(r, f"blob store: {describe(error)}")
        return stored

    async def _commit(self, batch: Sequence[_Ready]) -> None:
        # Every blob here is durable already (a storer's put_many, or a worker's put).
        new = [r for r in batch if r.document_id is None]
        changed = [(r.document_id, r.stored) for r in batch if r.document_id is not None]
        try:
            async with self.db.write() as session:
                await intake.import_files(
                    session, scope=self.scope, new=[r.stored for r in new], changed=changed
                )
        except Exception as exc:
            for r in batch:
                self._fail(r, describe(exc))
            return
        for r in batch:
            outcome: Outcome = "imported" if r.document_id is None else "versioned"
            self.emit(FileEvent(r.source.relative.as_posix(), outcome, r.stored.size))


async def _next_batch(inbox: ObjectReceiveStream[_Ready], size: int) -> list[_Ready]:
    """Wait for a file, then gather more until `size` files or BATCH_BYTES of staged
    files, BATCH_SECONDS after the first, or the end of the stream. [] at the end."""
    try:
        batch = [await inbox.receive()]
    except anyio.EndOfStream:
        return []
    staged = 0
    with anyio.move_on_after(BATCH_SECONDS):
        while len(batch) < size and staged < BATCH_BYTES:
            try:
                ready = await inbox.receive()
            except anyio.EndOfStream:
                break
            batch.append(ready)
            staged += ready.stored.size if ready.spooled is not None else 0
    return batch


def _filed_path(relative: PurePosixPath) -> PurePosixPath:
    """Where an imported file is filed: its folder and its cleaned file name."""
    try:
        return relative.parent / intake.clean_file_name(relative.name)
    except DomainError:
        return relative


async def import_tree(
    db: Database,
    blobs: BlobStore,
    *,
    who: Principal,
    project_id: int,
    root: Path,
    folder_id: int | None = None,
    concurrency: int = 8,
    max_bytes: int,
    on_plan: Planned = lambda files, size: None,
    on_file: Listener = lambda event: None,
) -> TransferReport:
    """Import every file under `root` into the project (under `folder_id`, else the root).

    Sub-directories become folders (existing ones with the same name are reused). A file
    already filed in its folder (same name, same content) is skipped, so re-running resumes;
    one whose content changed becomes a new version of the document with its name there;
    documents under the folder whose file is not in the tree are reported (`missing`), and
    kept. A problem with one file is reported through `on_file` and the report, never raised.
    """
    if not await anyio.to_thread.run_sync(root.is_dir):
        raise NotFound(f"{root} is not a directory.")
    started = time.monotonic()
    scan = await anyio.to_thread.run_sync(scan_tree, root)
    importer = _Importer(db, blobs, who, project_id, max_bytes, on_file)
    await importer.prepare(scan, folder_id)
    on_plan(len(scan.files), sum(f.size for f in scan.files))
    for problem in scan.problems:
        importer.emit(problem)
    send_files, receive_files = anyio.create_memory_object_stream[list[Source]](concurrency)
    # Staged files wait here for a storer: bounds the staging space in use.
    send_staged, receive_staged = anyio.create_memory_object_stream[_Ready](STORE_BATCH)
    # Stored files wait here for the writer, while it files the previous batch.
    send_ready, receive_ready = anyio.create_memory_object_stream[_Ready](BATCH_SIZE)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(importer.write, receive_ready)
            async with send_ready, receive_staged:
                for _ in range(STORERS):
                    tg.start_soon(importer.store, receive_staged.clone(), send_ready.clone())
            async with send_staged, receive_files:
                for _ in range(max(concurrency, 1)):
                    tg.start_soon(importer.work, receive_files.clone(), send_staged.clone())
            async with send_files:
                for chunk in chunks(scan.files):
                    await send_files.send(chunk)
    finally:
        if importer.staged:  # cancelled or crashed with files still waiting to be stored
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(unlink_all, list(importer.staged))
    for gone in importer.missing:
        importer.emit(gone)
    importer.report.seconds = time.monotonic() - started
    return importer.report
