"""Answers remembered while the database is unchanged: a read's whole answer (a page of
documents, read and written as JSON) kept under the database's version, so that a read
asked again before anything was committed is answered without reading or writing it again.

The version comes from the database, never from this process's memory
(statements.StatementReader.version): SQLite's `PRAGMA data_version` on the reader's own
connection, which moves with every commit of any other connection, in any process (the
reader's connection itself never writes: `query_only`); PostgreSQL's `pg_current_snapshot()`,
which two reads share only if no transaction that writes began or ended between them, so
that both see the same rows. So every write path (filing, moves, field values, the trash,
holds, grants, an account's deletion and its `ON DELETE SET NULL`, a statement typed into
psql) makes what was remembered unreachable, without any of them knowing about it; and an
answer depends on nothing but the database and its key (the caller, the request's values).

The version is read before the answer is: an answer read after a commit that followed the
version is newer than its version says, and that version is then never seen again, so it
is never answered. The version's own read is one of the reader's cheapest statements, and
a read that finds no answer pays it on top; a database written to all the time gains
nothing here but loses little.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

#: Answers kept at most, and their total size (bytes, as the caller weighs them): emptied
#: when either is reached. Pages change with every write, so old ones are not worth ranking.
MAX_ANSWERS = 512
MAX_BYTES = 16 * 1024 * 1024


class Answers:
    """Answers by key, each with the database version it was read at."""

    def __init__(self, *, max_answers: int = MAX_ANSWERS, max_bytes: int = MAX_BYTES) -> None:
        self._max_answers = max_answers
        self._max_bytes = max_bytes
        self._kept: dict[Hashable, tuple[Hashable, Any, int]] = {}
        self._bytes = 0

    def get(self, key: Hashable, version: Hashable) -> Any | None:
        """Given a key and the database's version now, return the answer kept for them, or
        None (none kept, or kept at another version)."""
        kept = self._kept.get(key)
        if kept is None or kept[0] != version:
            return None
        return kept[1]

    def put(self, key: Hashable, version: Hashable, answer: Any, size: int) -> None:
        """Keep an answer read at `version` (read after the version was), weighing `size`."""
        if size > self._max_bytes // 16:
            return
        replaced = self._kept.pop(key, None)
        if replaced is not None:
            self._bytes -= replaced[2]
        if len(self._kept) >= self._max_answers or self._bytes + size > self._max_bytes:
            self._kept.clear()
            self._bytes = 0
        self._kept[key] = (version, answer, size)
        self._bytes += size

    def __len__(self) -> int:
        return len(self._kept)
