"""Keeping the search index: versions are queued from the outbox, extracted by the worker.

Each round of the worker (outbound/worker.py) calls `Indexer.run_once`:

1. queue: new `document.created` / `version.added` changes of the outbox become
   `version_texts` rows with status pending (the position moves in the same transaction);
2. claim: a batch of pending rows is leased (`claimed_until`, `FOR UPDATE SKIP LOCKED` on
   PostgreSQL), its attempts counted; a worker that dies mid-batch loses its lease, and the
   rows are claimed again (after MAX_ATTEMPTS claims, a row fails with that reason);
3. extract each file in a child process (search/sandbox.py), outside any transaction,
   within the size, time and memory limits;
4. store: text and status `done`, or status `failed` with the reason. The database's own
   index follows the text column (FTS5 triggers on SQLite, a generated column on PostgreSQL).

A round stops claiming after ROUND_SECONDS, so webhook deliveries never wait long for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import anyio
from sqlalchemy import Select, String, Table, bindparam, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.config import Settings
from casefolio.db.conflicts import is_over_a_limit
from casefolio.db.engine import Database
from casefolio.db.models import Change, Document, DocumentVersion, VersionText
from casefolio.db.types import utcnow
from casefolio.domain import text as text_
from casefolio.domain.failures import passing
from casefolio.outbound import feed, sealing
from casefolio.search import extract, sandbox
from casefolio.storage import BlobStore, open_blob_store
from casefolio.storage.base import BlobMissing, BlobStoreUnavailable

log = logging.getLogger(__name__)

QUEUED = feed.SEARCH_QUEUED
#: pg_advisory_xact_lock key: one queueing at a time across workers.
QUEUE_LOCK = 0x6361_7365_666F_7331
QUEUE_BATCH = 1000
CLAIM_BATCH = 100
MAX_ATTEMPTS = 3
ROUND_SECONDS = 1.0
#: After the blob store could not be reached, extraction waits this long before it claims
#: files again; the rest of the worker's round (webhooks, the feed) goes on meanwhile.
STORE_RETRY = timedelta(seconds=30)
#: How long a stopping worker may take to store what it read and let go of the rest.
SETTLE_SECONDS = 5.0
#: The outbox types that bring a new version.
NEW_VERSION_TYPES = ("document.created", "version.added")
#: A file's reason when the database refused to store what was read from it.
UNSTORABLE = "What was read from the file could not be stored; the worker's log says why."


@dataclass(frozen=True)
class Job:
    version_id: int
    sha256: str
    size: int
    file_name: str
    content_type: str


@dataclass(frozen=True)
class Outcome:
    text: str | None
    reason: str | None


class Indexer:
    """`clock` is injectable so that tests expire leases without waiting."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        blobs: BlobStore | None = None,
    ) -> None:
        self.settings, self.db, self.clock = settings, db, clock
        self._blobs = blobs
        self.lease = timedelta(seconds=ROUND_SECONDS + settings.search_time_limit_seconds + 30)
        self._store_retry_at: datetime | None = None

    @property
    def blobs(self) -> BlobStore:
        if self._blobs is None:
            self._blobs = open_blob_store(self.settings)
        return self._blobs

    async def close(self) -> None:
        if self._blobs is not None:
            await self._blobs.close()

    @property
    def _postgres(self) -> bool:
        return self.db.engine.dialect.name == "postgresql"

    async def run_once(self) -> int:
        """Queue what is new and extract one batch; return how many things it did."""
        return await self.queue() + await self.extract_due()

    async def queue(self) -> int:
        # Changes committed but not numbered yet are not read below (PostgreSQL): number
        # them (the worker's round has, just before, unless this runs on its own).
        await sealing.number_pending(self.db)
        async with self.db.write() as session:
            if self._postgres:
                await session.execute(text(f"SELECT pg_advisory_xact_lock({QUEUE_LOCK})"))
            position = await feed.state(session, QUEUED)
            changes = (
                await session.execute(
                    select(Change.seq, Change.type, Change.version_id)
                    .where(Change.seq > position)
                    .order_by(Change.seq)
                    .limit(QUEUE_BATCH)
                )
            ).all()
            if not changes:
                return 0
            new = {c.version_id for c in changes if c.type in NEW_VERSION_TYPES and c.version_id}
            if new:
                ids = select(DocumentVersion.id).where(DocumentVersion.id.in_(new))
                await session.execute(insert_pending(session, ids))
            await feed.set_state(session, QUEUED, changes[-1].seq)
            return len(new)

    async def extract_due(self) -> int:
        if self._store_retry_at is not None and self.clock() < self._store_retry_at:
            return 0
        jobs = await self._claim()
        if not jobs:
            return 0
        started = time.monotonic()
        results: list[tuple[Job, Outcome]] = []
        try:
            await self._extract_all(jobs, results, started)
        except anyio.get_cancelled_exc_class():
            # The worker stopping (a server shutting down, SIGTERM): what was read is
            # stored, the rest let go of uncounted. Left to their leases, the batch was read
            # again from the start, and three stops failed all its files.
            with anyio.move_on_after(SETTLE_SECONDS, shield=True):
                await self._store(results, [job.version_id for job in jobs[len(results) :]])
            raise
        await self._store(results, [job.version_id for job in jobs[len(results) :]])
        return len(results)

    async def _extract_all(
        self, jobs: list[Job], results: list[tuple[Job, Outcome]], started: float
    ) -> None:
        """Read the jobs' files in turn into `results`, until ROUND_SECONDS have passed."""
        for job in jobs:
            if results and time.monotonic() - started > ROUND_SECONDS:
                break  # the rest go back to the queue, for the next round
            try:
                results.append((job, await self._extract(job)))
            except BlobStoreUnavailable as exc:
                # Not the file's fault: it goes back to the queue, its attempt not counted
                # (three would mark it failed), with the rest.
                self._store_retry_at = self.clock() + STORE_RETRY
                log.warning(
                    "search: the blob store cannot be reached (%s); extraction resumes in %d s",
                    exc,
                    STORE_RETRY.total_seconds(),
                )
                break

    async def _claim(self) -> list[Job]:
        now = self.clock()
        async with self.db.write() as session:
            due: Select[Any] = (
                select(VersionText)
                .where(
                    VersionText.status == "pending",
                    or_(VersionText.claimed_until.is_(None), VersionText.claimed_until < now),
                )
                .order_by(VersionText.version_id)
                .limit(CLAIM_BATCH)
            )
            if self._postgres:
                due = due.with_for_update(skip_locked=True)
            rows = list(await session.scalars(due))
            if not rows:
                return []
            versions = {
                v.id: v
                for v in await session.scalars(
                    select(DocumentVersion).where(
                        DocumentVersion.id.in_([r.version_id for r in rows])
                    )
                )
            }
            jobs = []
            for row in rows:
                version = versions.get(row.version_id)
                if row.attempts >= MAX_ATTEMPTS:
                    _fail(row, f"Reading the text stopped its worker {row.attempts} times.", now)
                    continue
                if version is None:
                    continue
                row.attempts += 1
                row.claimed_until = now + self.lease
                jobs.append(
                    Job(
                        version.id,
                        version.sha256,
                        version.size,
                        version.file_name,
                        version.content_type,
                    )
                )
            return jobs

    async def _extract(self, job: Job) -> Outcome:
        settings = self.settings
        limit = settings.search_max_file_bytes
        if job.size > limit:
            return Outcome(None, f"The file is larger than {limit} bytes, the size limit.")
        try:
            source = await self._source(job)
            if source is None:
                return Outcome(None, f"casefolio does not read text from {job.content_type} files.")
            reading = sandbox.Job(
                source,
                file_name=job.file_name,
                content_type=job.content_type,
                seconds=settings.search_time_limit_seconds,
                max_chars=settings.search_max_text_chars,
                memory_mib=settings.search_memory_limit_mib,
                ocr_languages=settings.search_ocr_languages if settings.search_ocr else None,
            )
            # The child is killed at the time limit, so the thread is never left waiting; if
            # this task is cancelled (the worker stopping), the child is killed at once.
            try:
                text = await anyio.to_thread.run_sync(
                    sandbox.shared.read, reading, abandon_on_cancel=True
                )
            except anyio.get_cancelled_exc_class():
                sandbox.shared.interrupt()
                raise
            return Outcome(text, None)
        except extract.ExtractionFailed as exc:
            return Outcome(None, str(exc))
        except (BlobMissing, FileNotFoundError):
            return Outcome(None, "The stored file is missing from the blob store.")

    async def _source(self, job: Job) -> Path | bytes | None:
        """What the child reads: a local blob's path (it reads the file itself), or a
        remote blob's bytes; None, with nothing more read, when the name, type and first
        bytes show a file of no kind casefolio reads."""
        ocr = self.settings.search_ocr
        if extract.kind_of(job.file_name, job.content_type, b"", ocr=ocr) is None and job.size > 0:
            head = b"".join([chunk async for chunk in self.blobs.read(job.sha256, 0, 8)])
            if extract.kind_of(job.file_name, job.content_type, head, ocr=ocr) is None:
                return None
        path = self.blobs.local_path(job.sha256)
        if path is not None:
            return path
        return b"".join([chunk async for chunk in self.blobs.read(job.sha256)])

    async def _store(self, results: Sequence[tuple[Job, Outcome]], unfinished: list[int]) -> None:
        try:
            await self._store_together(results, unfinished)
        except Exception as exc:
            if passing(exc):
                raise
            # The database refused something of one file's (PostgreSQL: a text of more
            # distinct words than a tsvector holds). Left as it was, the whole batch would
            # be read again at its next claims and, after MAX_ATTEMPTS, fail every file.
            log.error("search: storing %d outcomes failed; storing each apart", len(results))
            await self._store_apart(results, unfinished)

    async def _store_apart(
        self, results: Sequence[tuple[Job, Outcome]], unfinished: list[int]
    ) -> None:
        """Each outcome in a transaction of its own; a refused one fails its file with
        UNSTORABLE, and if even that is refused the file is left to its lease."""
        for job, outcome in results:
            try:
                await self._store_fitting(job, outcome)
                continue
            except Exception as exc:
                if passing(exc):
                    raise
                log.exception("search: version %d: its outcome cannot be stored", job.version_id)
            try:
                await self._store_together([(job, Outcome(None, UNSTORABLE))], [])
            except Exception as exc:
                if passing(exc):
                    raise
                log.exception("search: version %d: left to its lease", job.version_id)
        if unfinished:
            await self._store_together([], unfinished)

    async def _store_fitting(self, job: Job, outcome: Outcome) -> None:
        """Store one outcome. A text past the index's limit (PostgreSQL: more distinct
        words than a tsvector holds) is cut in half until it fits: its beginning stays
        searchable, as the rest of a text past search_max_text_chars is cut off."""
        while True:
            try:
                await self._store_together([(job, outcome)], [])
                return
            except Exception as exc:
                read = outcome.text
                if not (is_over_a_limit(exc) and read and len(read) > _SHORTEST_CUT):
                    raise
                kept = _cut_at_a_space(read, len(read) // 2)
                log.warning(
                    "search: version %d: %d characters of text are more than the index "
                    "holds; keeping the first %d",
                    job.version_id,
                    len(read),
                    len(kept),
                )
                outcome = Outcome(kept, None)

    async def _store_together(
        self, results: Sequence[tuple[Job, Outcome]], unfinished: list[int]
    ) -> None:
        now = self.clock()
        async with self.db.write() as session:
            if results:
                await session.execute(
                    _STORE,
                    [
                        {
                            "vid": job.version_id,
                            "status": "done" if outcome.reason is None else "failed",
                            "reason": None
                            if outcome.reason is None
                            else text_.storable(outcome.reason, limit=_REASON),
                            "text": outcome.text,
                            "at": now,
                        }
                        for job, outcome in results
                    ],
                )
            if unfinished:
                await session.execute(
                    update(VersionText)
                    .where(VersionText.version_id.in_(unfinished))
                    .values(claimed_until=None, attempts=VersionText.attempts - 1)
                )


#: The reason column's length (a reason quotes libraries' messages, which may quote the file).
_REASON = cast(String, cast(Table, VersionText.__table__).c.reason.type).length or 500
_STORE = (
    update(VersionText.__table__)  # type: ignore[arg-type]
    .where(VersionText.__table__.c.version_id == bindparam("vid"))
    .values(
        status=bindparam("status"),
        reason=bindparam("reason"),
        text=bindparam("text"),
        extracted_at=bindparam("at"),
        claimed_until=None,
    )
)


#: A text no longer than this that the index still refuses fails its file instead.
_SHORTEST_CUT = 1000


def _cut_at_a_space(words: str, at: int) -> str:
    """The first `at` characters, shortened to end before a word cut in two."""
    space = words.rfind(" ", 0, at + 1)
    return words[: space if space > at // 2 else at]


def _fail(row: VersionText, reason: str, now: datetime) -> None:
    row.status, row.reason, row.text = "failed", reason, None
    row.claimed_until, row.extracted_at = None, now


def insert_pending(session: AsyncSession, version_ids: Select[Any]) -> Any:
    """An insert of pending rows for the filed versions among `version_ids` (a select of
    one id column), leaving rows that exist alone."""
    ids = version_ids.subquery()
    rows = select(DocumentVersion.id, text("'pending'"), text("0")).where(
        DocumentVersion.id.in_(select(ids.c[0])), DocumentVersion.document_id.is_not(None)
    )
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return (
        dialect.insert(VersionText)
        .from_select(["version_id", "status", "attempts"], rows)
        .on_conflict_do_nothing(index_elements=["version_id"])
    )


async def reindex(session: AsyncSession, *, project_id: int | None = None) -> int:
    """Queue every filed version (of one project) for extraction again; return how many.
    Text already extracted stays searchable until its new text replaces it."""
    versions = select(DocumentVersion.id).join(Document, Document.id == DocumentVersion.document_id)
    if project_id is not None:
        versions = versions.where(Document.project_id == project_id)
    await session.execute(insert_pending(session, versions))
    result = await session.execute(
        update(VersionText)
        .where(VersionText.version_id.in_(versions))
        .values(status="pending", attempts=0, claimed_until=None, reason=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
