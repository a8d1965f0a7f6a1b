"""The worker's loop: a round that fails is followed by another, later and later while they
keep failing, up to a maximum (test_worker_processes.py: the worker then delivers again)."""

from __future__ import annotations

from pathlib import Path

import pytest

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.outbound.worker import ROUND_RETRY_MAX_SECONDS, ROUND_RETRY_SECONDS, Worker


class _Stop(BaseException):
    """Ends the worker's loop from its pause (as a cancellation would)."""


async def test_failed_rounds_wait_longer_each_time_up_to_the_maximum(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database the worker cannot open: every round fails, as while a server is down.
    gone = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'no-such-folder' / 'casefolio.db'}",
    )
    db = Database.open(gone)
    waits: list[float] = []

    async def pause(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 9:
            raise _Stop

    worker = Worker(gone, db, pause=pause)
    try:
        # run() holds its sends in a task group, which hands the exception on in a group.
        with pytest.raises(BaseExceptionGroup) as stopped:
            await worker.run()
        assert stopped.group_contains(_Stop)
    finally:
        await worker.close()
        await db.close()

    doubling = [ROUND_RETRY_SECONDS * 2**n for n in range(9)]
    assert waits == [min(w, ROUND_RETRY_MAX_SECONDS) for w in doubling]
    assert waits[-1] == ROUND_RETRY_MAX_SECONDS
    failed = [r for r in caplog.records if "a worker round failed" in r.getMessage()]
    assert len(failed) == 9
    assert "unable to open database file" in failed[0].getMessage()
