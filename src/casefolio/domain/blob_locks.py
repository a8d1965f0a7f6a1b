"""Filing bytes and removing them take turns, blob by blob.

An upload stores its bytes first (`BlobStore.put`, which refreshes the time of bytes already
there) and commits the version row that refers to them after. gc and the trash's purge
remove a blob that no row refers to and that is older than their grace period. Looked at
one after the other, the two can interleave: the remover finds the blob old and unused, an
upload of the same bytes refreshes it and commits its row, the remover deletes it, and a
filed version has no bytes.

So a removal is one transaction that holds the blob's lock exclusively while it looks and
deletes, and a filing holds it shared while it checks that its bytes are there and until it
commits. Either the removal comes first, and the filing finds its bytes gone (`Conflict`:
nothing is saved, the client sends the file again), or the filing commits first, and the
removal finds the row. On PostgreSQL the lock is an advisory transaction lock keyed by the
digest; on SQLite it is the database's write lock, which every writer holds until it
commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from enum import Enum

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import BigInteger

from casefolio.db.engine import Database, hold_sqlite_write_lock
from casefolio.db.models import DocumentVersion
from casefolio.db.reads import dialect_name
from casefolio.domain.errors import Conflict
from casefolio.storage.base import BlobStore

_SHARED = text(
    "SELECT pg_advisory_xact_lock_shared(k) FROM unnest(:keys) AS k ORDER BY k"
).bindparams(bindparam("keys", type_=ARRAY(BigInteger)))
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:key)")
#: A batch (an import's) asks a remote store this many questions at a time.
_CHECKS_AT_ONCE = 16


class Removal(Enum):
    REMOVED = "removed"
    REFERENCED = "referenced"  # a version row refers to it
    YOUNG = "young"  # stored within the grace period: an upload may be filing it
    GONE = "gone"  # not in the store


async def referenced_blobs(session: AsyncSession, shas: set[str]) -> set[str]:
    """Which of these blobs a version row still refers to (live, trashed or held): the one
    rule of when bytes may go, for gc and for the trash's purge alike."""
    return set(
        await session.scalars(
            select(DocumentVersion.sha256).where(DocumentVersion.sha256.in_(shas)).distinct()
        )
    )


def _key(sha256: str) -> int:
    """The advisory lock's key: the digest's first 64 bits, signed as PostgreSQL's bigint."""
    return int.from_bytes(bytes.fromhex(sha256[:16]), "big", signed=True)


async def confirm_stored(session: AsyncSession, blobs: BlobStore, shas: Iterable[str]) -> None:
    """In a filing's transaction, after its bytes were stored and before it commits: hold
    these blobs' locks until the commit, and raise Conflict if one of them is not in the
    store (a removal came between the put and now)."""
    wanted = sorted(set(shas))
    if not wanted:
        return
    if dialect_name(session) == "postgresql":
        await session.execute(_SHARED, {"keys": [_key(sha) for sha in wanted]})
    else:
        await hold_sqlite_write_lock(session)
    if not all(await _present(blobs, wanted)):
        raise Conflict(
            "The file's stored bytes were removed by a clean-up (casefolio gc or the "
            "trash's purge) while it was being filed; nothing was saved. Send it again."
        )


async def _present(blobs: BlobStore, shas: list[str]) -> list[bool]:
    paths = [blobs.local_path(sha) for sha in shas]
    if all(path is not None for path in paths):
        # Files just stored: their stat is answered from the kernel's caches, inline (a
        # worker thread's hand-off would cost more than the stat).
        return [path is not None and path.is_file() for path in paths]
    found: list[bool] = []
    for at in range(0, len(shas), _CHECKS_AT_ONCE):  # a HEAD each on S3
        found += await asyncio.gather(*map(blobs.exists, shas[at : at + _CHECKS_AT_ONCE]))
    return found


async def remove_unless_used(
    db: Database, blobs: BlobStore, sha256: str, *, stored_before: datetime
) -> Removal:
    """Delete a blob unless a version row refers to it or it was stored at or after
    `stored_before`, taking its turn with filings as the module says."""
    async with db.write() as session:
        if dialect_name(session) == "postgresql":
            await session.execute(_EXCLUSIVE, {"key": _key(sha256)})
        else:
            await hold_sqlite_write_lock(session)
        if await referenced_blobs(session, {sha256}):
            return Removal.REFERENCED
        modified = await blobs.modified(sha256)
        if modified is None:
            return Removal.GONE
        if modified >= stored_before:
            return Removal.YOUNG
        await blobs.delete(sha256)
        return Removal.REMOVED
