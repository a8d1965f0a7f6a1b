"""Checking that an answer kept while the database is unchanged (fastpath/answers.py) is
served without a read.

On PostgreSQL the database's version is the snapshot, which any transaction of the cluster
moves (autovacuum's analyze, the other databases' tests): "nothing committed in between" can
be observed only in a quiet moment, which a few tries find."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")
TRIES = 10


async def answered_as_kept(
    request: Callable[[], Awaitable[T]], reads: list[int], *, fast: bool
) -> T:
    """Make `request` until it is answered without a read counted in `reads` (with `fast`;
    without it, with exactly one read: the plain path keeps nothing); return that answer."""
    for _ in range(TRIES):
        before = len(reads)
        answer = await request()
        if len(reads) == before + (0 if fast else 1):
            return answer
    pytest.fail(f"read again on each of {TRIES} requests with nothing committed here")
