"""Text is read in a child process (search/sandbox.py): a file that keeps a reader busy past
the time limit, or needs more memory than allowed, costs that child, never the process that
indexes, and the next file is read by a fresh one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import select

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import VersionText
from casefolio.search import extract, sandbox
from casefolio.search.index import Indexer
from tests.factories import make_actor, serving
from tests.s3 import s3_endpoint, s3_settings
from tests.search import files
from tests.search.conftest import Matter, index_all, make_matter, titles, upload

__all__ = ["s3_endpoint"]

#: One page of this many lines (a 10 MB PDF): pypdf reads a page at one go, more than a
#: minute of CPU here, and the reader's deadline is checked only between pages.
LONG_PAGE_LINES = 300_000


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie nobody reaped yet has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def _reasons(db: Database) -> dict[int, str | None]:
    async with db.read() as session:
        rows = (await session.scalars(select(VersionText))).all()
    return {row.version_id: row.reason for row in rows}


async def test_a_reader_busy_past_the_time_limit_is_killed_and_the_next_file_is_read(
    client: httpx.AsyncClient, matter: Matter, settings: Settings, db: Database
) -> None:
    indexer = Indexer(settings.model_copy(update={"search_time_limit_seconds": 0.5}), db)
    await upload(client, matter.writer, matter.id, "first.txt", b"a first easy file")
    await index_all(indexer)
    reader = sandbox.shared.pid
    assert reader is not None and _alive(reader)

    long_pdf = files.pdf(*["line of a long page"] * LONG_PAGE_LINES)
    made = await upload(client, matter.writer, matter.id, "long.pdf", long_pdf, "application/pdf")
    await index_all(indexer)
    assert not _alive(reader)  # killed, not left running in the background
    version_id = int(made["currentVersion"]["id"])
    assert (await _reasons(db))[version_id] == "Reading the text took longer than 0.5 s."

    await upload(client, matter.writer, matter.id, "after.txt", b"the indemnity clause")
    await index_all(indexer)
    await indexer.close()
    assert await titles(client, matter.reader, "indemnity") == {"after.txt"}
    assert sandbox.shared.pid not in (None, reader)


async def test_a_file_needing_more_memory_than_allowed_fails_and_the_next_is_read(
    client: httpx.AsyncClient, matter: Matter, settings: Settings, db: Database
) -> None:
    indexer = Indexer(settings.model_copy(update={"search_memory_limit_mib": 64}), db)
    # Within the DOCX limits (64 MiB of XML), yet parsed whole it takes more than 64 MiB.
    greedy = files.docx_unpacking_to(xml=60 * 1024 * 1024)
    made = await upload(client, matter.writer, matter.id, "greedy.docx", greedy, extract.DOCX)
    await upload(client, matter.writer, matter.id, "plain.txt", b"the indemnity clause")
    await index_all(indexer)
    await indexer.close()
    version_id = int(made["currentVersion"]["id"])
    reason = (await _reasons(db))[version_id]
    assert reason == "Reading the text needed more than 64 MiB of memory."
    assert await titles(client, matter.reader, "indemnity") == {"plain.txt"}


async def test_a_worker_stopping_mid_file_kills_the_reader_at_once(
    client: httpx.AsyncClient, matter: Matter, settings: Settings, db: Database
) -> None:
    # A server shutting down cancels its worker: it must not wait for the file's time limit.
    long_pdf = files.pdf(*["line of a long page"] * LONG_PAGE_LINES)
    await upload(client, matter.writer, matter.id, "long.pdf", long_pdf, "application/pdf")
    # A limit far beyond the page's seconds: only the cancellation can end the child.
    indexer = Indexer(settings.model_copy(update={"search_time_limit_seconds": 3600}), db)
    sandbox.shared.close()  # a fresh child, so its CPU counts only this file
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(indexer.run_once)
        pid = await anyio.to_thread.run_sync(_busy_child, sandbox.shared)
        tasks.cancel_scope.cancel()
    await indexer.close()
    assert _ends(pid, within=10)


def test_a_reader_left_busy_by_a_killed_parent_ends_by_its_cpu_limit(tmp_path: Path) -> None:
    # The parent hands the child the long page with a 0.5 s limit, then is killed -9 before
    # it could kill the child itself: the kernel's CPU limit ends the child instead.
    long_pdf = tmp_path / "long.pdf"
    long_pdf.write_bytes(files.pdf(*["line of a long page"] * LONG_PAGE_LINES))
    script = textwrap.dedent(
        f"""
        import pathlib, sys, time
        from casefolio.search import sandbox
        job = sandbox.Job(pathlib.Path({str(long_pdf)!r}), file_name="long.pdf",
            content_type="application/pdf", seconds=0.5, max_chars=1000, memory_mib=1024)
        sandbox.shared.connection().send(job)
        print(sandbox.shared.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert _alive(child)
    assert _ends(child, within=60)


def test_a_reader_that_crashes_fails_the_file_saying_so_and_the_next_is_read(
    tmp_path: Path,
) -> None:
    long_pdf = tmp_path / "long.pdf"
    long_pdf.write_bytes(files.pdf(*["line of a long page"] * LONG_PAGE_LINES))
    reader = sandbox.ExtractionProcess()

    def job(source: Path | bytes, name: str) -> sandbox.Job:
        return sandbox.Job(source, name, "application/octet-stream", 30, 1000, 1024)

    def crash_once_busy() -> None:
        # A crash of the kind a reader's C code could cause.
        os.kill(_busy_child(reader), signal.SIGSEGV)

    crasher = threading.Thread(target=crash_once_busy)
    crasher.start()
    try:
        with pytest.raises(extract.ExtractionFailed, match=r"crashed on this file \(SIGSEGV\)"):
            reader.read(job(long_pdf, "long.pdf"))
    finally:
        crasher.join()
    assert reader.read(job(b"next file", "next.txt")) == "next file"
    reader.close()


def _busy_child(reader: sandbox.ExtractionProcess) -> int:
    """Wait until `reader`'s child has spent a tenth of a second of CPU (on a file); its pid."""
    while (pid := reader.pid) is None or _cpu_ticks(pid) < 10:
        time.sleep(0.01)
    return pid


def _ends(pid: int, *, within: float) -> bool:
    """Whether the process ends within `within` seconds (a bound, not a measurement)."""
    give_up = time.monotonic() + within
    while _alive(pid) and time.monotonic() < give_up:
        time.sleep(0.05)
    return not _alive(pid)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@pytest.mark.s3
async def test_files_in_s3_are_sent_to_the_reader_and_found(
    settings: Settings, s3_endpoint: str
) -> None:
    on_s3 = s3_settings(settings, s3_endpoint)
    async with serving(on_s3) as (app, client):
        db = app.state.casefolio.db
        matter = await make_matter(client, db, await make_actor(db, operator=True))
        await upload(client, matter.writer, matter.id, "memo.txt", b"the indemnity memo")
        brief = files.pdf("the indemnity brief")
        await upload(client, matter.writer, matter.id, "brief.pdf", brief, "application/pdf")
        movie = b"\x00\x01 not a kind casefolio reads" * 1000
        await upload(client, matter.writer, matter.id, "clip.bin", movie, "video/mp4")
        indexer = Indexer(on_s3, db)
        await index_all(indexer)
        await indexer.close()
        assert await titles(client, matter.reader, "indemnity") == {"memo.txt", "brief.pdf"}
        reasons = set((await _reasons(db)).values())
        assert "casefolio does not read text from video/mp4 files." in reasons
