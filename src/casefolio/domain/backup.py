"""`casefolio backup`: a copy of an embedded installation (SQLite and the local blob folder)
that is itself a data folder, taken while casefolio runs.

First the database as of one moment (SQLite's `VACUUM INTO`: a read transaction, so writers
go on), then every blob a version in that copy names, each checked against its SHA-256 and
size while it is copied. Blobs are written before the rows that name them and never change,
so the copy holds what the database copy needs; a blob that is missing or damaged in the
installation is reported, never copied as if it were sound. Nothing is final until fsynced:
the database file gets its name last.

PostgreSQL and S3 have their own tools (docs/scaling.md, maintenance); this refuses them.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from casefolio.config import BLOB_FOLDER, DATABASE_FILE, Settings
from casefolio.domain.errors import Invalid
from casefolio.domain.transfer import (
    FileEvent,
    Listener,
    Planned,
    TransferReport,
    prepare_destination,
)
from casefolio.storage import durable
from casefolio.storage.base import blob_key

_CHUNK = 1024 * 1024
#: How long the snapshot waits for a database another process is changing its schema of.
_BUSY_MS = 30_000


def backup(
    settings: Settings,
    dest: Path,
    *,
    on_plan: Planned = lambda files, size: None,
    on_file: Listener = lambda event: None,
) -> TransferReport:
    """Copy the installation of `settings` into `dest` (new or empty), laid out as a data
    folder (config.DATABASE_FILE, config.BLOB_FOLDER); blocking. Each blob is a file event
    (`exported`, or `failed` with why), its path the one in `dest`."""
    database = settings.sqlite_file
    if database is None or settings.blob_store:
        raise Invalid(
            "casefolio backup copies an installation on SQLite and a local blob folder; this "
            "one keeps its data in PostgreSQL or S3: back those up with their own tools "
            "(pg_dump, the bucket's versioning or replication; docs/scaling.md)."
        )
    if not database.is_file():
        raise Invalid(f"There is no database at {database} to back up.")
    started = time.monotonic()
    dest = dest.absolute()
    prepare_destination(dest, [Path(BLOB_FOLDER)])
    partial = dest / f".{DATABASE_FILE}.part"
    with closing(sqlite3.connect(database, timeout=_BUSY_MS / 1000)) as live:
        live.execute("VACUUM INTO ?", (str(partial),))
    with closing(sqlite3.connect(f"{partial.as_uri()}?mode=ro", uri=True)) as copy:
        wanted = copy.execute(
            "SELECT sha256, max(size) FROM document_versions GROUP BY sha256 ORDER BY sha256"
        ).fetchall()
    on_plan(len(wanted), sum(size for _, size in wanted))
    report = TransferReport()
    copied: list[Path] = [partial]
    for sha256, size in wanted:
        key = f"{BLOB_FOLDER}/{blob_key(sha256)}"
        problem = _copy_checked(settings.blob_dir / blob_key(sha256), dest / key, sha256, size)
        event = FileEvent(key, "failed" if problem else "exported", size, problem)
        if not problem:
            copied.append(dest / key)
        report.record(event)
        on_file(event)
    # Made durable as one batch (syncfs where there is one), as the local store's batches
    # are (`put_many`); only then does the database copy get its name, which makes the
    # backup whole.
    folders = {dest, dest / BLOB_FOLDER}
    folders.update(p for blob in copied[1:] for p in (blob.parent, blob.parent.parent))
    with durable.Flusher(dest) as flush:
        unsaved = flush.files(copied)
        unsaved.update(flush.directories(folders))
        if unsaved:
            path, error = next(iter(unsaved.items()))
            raise OSError(f"{path} may not be on disk: {error}") from error
        os.replace(partial, dest / DATABASE_FILE)
        durable.fsync_dir(dest)
    report.seconds = time.monotonic() - started
    return report


def _copy_checked(source: Path, target: Path, sha256: str, size: int) -> str:
    """Copy a blob, checked (its data flushed later, with the rest); what is wrong with it in
    the installation, or "" if nothing. A blob that cannot be read is reported and the
    backup goes on; the backup's own folder failing to take a write fails the backup."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    digest, copied = hashlib.sha256(), 0
    try:
        reading = source.open("rb")
    except FileNotFoundError:
        return "missing from the installation's blob folder"
    except OSError as exc:
        return f"cannot be read in the installation: {exc.strerror or exc}"
    with reading, partial.open("wb") as writing:
        while True:
            try:
                chunk = reading.read(_CHUNK)
            except OSError as exc:  # a failing disk under the installation
                problem = f"cannot be read in the installation: {exc.strerror or exc}"
                break
            if not chunk:
                problem = ""
                break
            digest.update(chunk)
            copied += len(chunk)
            writing.write(chunk)
    if not problem and (digest.hexdigest() != sha256 or copied != size):
        problem = f"damaged in the installation: {copied:,} bytes that do not match its SHA-256"
    if problem:
        partial.unlink()
        return problem
    os.replace(partial, target)
    return ""
