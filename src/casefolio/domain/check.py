"""`casefolio check`: read every stored file back and compare it with the SHA-256 and size
recorded when it was filed, so that bytes lost or damaged outside casefolio (a failing disk,
a restore, a bucket rule) are found before someone needs them.

Each blob is read once, however many versions share it, from the local folder or S3 alike;
a problem is reported with every version that names the blob, so the administrator knows
which documents to recover from a backup. Nothing is changed.
"""

from __future__ import annotations

import hashlib
import time

import anyio
from anyio.abc import ObjectReceiveStream
from sqlalchemy import func, select

from casefolio.db.engine import Database
from casefolio.db.models import Document, DocumentVersion, Project
from casefolio.domain.errors import found
from casefolio.domain.transfer import FileEvent, Listener, Planned, TransferReport
from casefolio.storage.base import BlobMissing, BlobStore

#: Blobs read from the database per query (keyset pages by SHA-256).
_PAGE = 1000
#: Versions named in one problem's message; more are counted.
_NAMED = 5


async def check_blobs(
    db: Database,
    blobs: BlobStore,
    *,
    project_id: int | None = None,
    concurrency: int = 4,
    on_plan: Planned = lambda files, size: None,
    on_file: Listener = lambda event: None,
) -> TransferReport:
    """Check the blobs of every version (trashed ones too), or of one project's; each is a
    file event named by its SHA-256: `exported` when sound, `failed` saying what is wrong
    and which versions need it."""
    started = time.monotonic()
    per_blob = select(DocumentVersion.sha256, func.max(DocumentVersion.size).label("size"))
    if project_id is not None:
        per_blob = per_blob.join(Document, Document.id == DocumentVersion.document_id).where(
            Document.project_id == project_id
        )
    per_blob = per_blob.group_by(DocumentVersion.sha256)
    async with db.read() as session:
        if project_id is not None:
            found(await session.get(Project, project_id), f"There is no project {project_id}.")
        counted = per_blob.subquery()
        count, total = (
            await session.execute(select(func.count(), func.coalesce(func.sum(counted.c.size), 0)))
        ).one()
    on_plan(int(count), int(total))
    report = TransferReport()
    send, receive = anyio.create_memory_object_stream[tuple[str, int]](concurrency * 2)

    async def work(inbox: ObjectReceiveStream[tuple[str, int]]) -> None:
        async with inbox:
            async for sha256, size in inbox:
                problem = await _problem(blobs, sha256, size)
                if problem:
                    said = f"{problem}; {await _needed_by(db, sha256)}"
                    event = FileEvent(sha256, "failed", size, said)
                else:
                    event = FileEvent(sha256, "exported", size)
                report.record(event)
                on_file(event)

    async with anyio.create_task_group() as tg:
        async with receive:
            for _ in range(max(concurrency, 1)):
                tg.start_soon(work, receive.clone())
        async with send:
            after = ""
            while True:
                async with db.read() as session:
                    page = (
                        await session.execute(
                            per_blob.where(DocumentVersion.sha256 > after)
                            .order_by(DocumentVersion.sha256)
                            .limit(_PAGE)
                        )
                    ).all()
                for sha256, size in page:
                    await send.send((sha256, int(size)))
                if len(page) < _PAGE:
                    break
                after = page[-1][0]
    report.seconds = time.monotonic() - started
    return report


async def _problem(blobs: BlobStore, sha256: str, size: int) -> str:
    digest, read = hashlib.sha256(), 0
    try:
        async for chunk in blobs.read(sha256):
            digest.update(chunk)
            read += len(chunk)
    except BlobMissing:
        return "missing from the blob store"
    except OSError as exc:  # the local folder's file: a failing disk, its permissions
        return f"cannot be read: {exc.strerror or exc}"
    if read != size or digest.hexdigest() != sha256:
        return f"damaged: {read:,} bytes that do not match its SHA-256"
    return ""


async def _needed_by(db: Database, sha256: str) -> str:
    async with db.read() as session:
        rows = (
            await session.execute(
                select(
                    Document.project_id,
                    DocumentVersion.document_id,
                    DocumentVersion.id,
                    DocumentVersion.file_name,
                )
                .join(Document, Document.id == DocumentVersion.document_id)
                .where(DocumentVersion.sha256 == sha256)
                .order_by(DocumentVersion.id)
            )
        ).all()
    named = ", ".join(
        f"project {p} document {d} version {v} ({name!r})" for p, d, v, name in rows[:_NAMED]
    )
    more = f" and {len(rows) - _NAMED:,} more" if len(rows) > _NAMED else ""
    return f"needed by {named}{more}"
