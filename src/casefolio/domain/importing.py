"""Bulk import of a directory tree into a project.

Import runs as a pipeline, once domain/import_target.py has checked access, made the
folder tree and loaded what is already filed: worker tasks hash chunks of files into the
blob store's staging folder (one thread call per chunk, domain/import_sources.py); a
storer task makes a few hundred staged blobs durable with one `put_many` (on Linux, one
syncfs for their data and one for their names); only then does the writer task file them
as documents, a few hundred per transaction. Large files the workers `put` themselves
right away.
A crash therefore leaves at most orphan blobs and staging files (which `casefolio gc`
removes). Import is a sync: re-running skips every file that is already a document in its
folder (same file name, same content), adds a changed file as a new version of the
document with its name there, and reports (never deletes) documents whose file is gone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from casefolio.db.engine import Database
from casefolio.domain import import_target, intake
from casefolio.domain.errors import DomainError, NotFound
from casefolio.domain.import_sources import Source, chunks, scan_tree, stage_all, unlink_all
from casefolio.domain.import_target import FileKey, ImportTarget
from casefolio.domain.principal import Principal
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
        target: ImportTarget,
        max_bytes: int,
        listener: Listener,
    ) -> None:
        self.db, self.blobs, self.target = db, blobs, target
        self.max_bytes = max_bytes
        self.listener = listener
        self.report = TransferReport()
        # Staged files not yet handed to the blob store, removed if the run is cancelled.
        self.staged: set[Path] = set()

    def emit(self, event: FileEvent) -> None:
        self.report.record(event)
        self.listener(event)

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
            problem = self.target.folder_problem.get(source.relative.parent)
            if problem is not None:
                self.emit(FileEvent(where, "failed", source.size, problem))
                continue
            try:
                file_name = intake.clean_file_name(source.relative.name)
            except DomainError as exc:
                self.emit(FileEvent(where, "failed", source.size, describe(exc)))
                continue
            todo.append((source, self.target.folder_of[source.relative.parent], file_name))
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
            key = FileKey(folder_id or 0, file_name, spooled.sha256)
            if key in self.target.present:
                duplicates.append(spooled.path)
                self.emit(FileEvent(where, "skipped", spooled.size, "already in the folder"))
                continue
            self.target.present.add(key)
            document_id = self.target.current.get((folder_id or 0, file_name))
            stored = intake.StoredFile(folder_id, file_name, spooled.sha256, spooled.size)
            if spooled.size < PUT_ALONE_BYTES:
                self.staged.add(spooled.path)
                # a storer stores it
                ready.append(_Ready(source, stored, spooled, document_id))
                continue
            try:
                await self.blobs.put(spooled)  # durable before the writer files its row
            except Exception as exc:
                self.target.present.discard(key)
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
        self.target.present.discard(FileKey(stored.folder_id or 0, stored.file_name, stored.sha256))
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
                    session,
                    scope=self.target.scope,
                    blobs=self.blobs,
                    new=[r.stored for r in new],
                    changed=changed,
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
    async with db.write() as session:
        target = await import_target.prepare(
            session, who=who, project_id=project_id, scan=scan, base_folder_id=folder_id
        )
    importer = _Importer(db, blobs, target, max_bytes, on_file)
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
    for gone in target.missing:
        importer.emit(gone)
    importer.report.seconds = time.monotonic() - started
    return importer.report
