"""An upgrade killed halfway (Ctrl-C, kill -9, a power cut) leaves the SQLite database as
it was, and running it again completes it: every pending migration is one transaction."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from casefolio.config import Settings
from casefolio.db import migrate

#: Run as a child: migrate, killing itself (SIGKILL: no clean-up at all) just before the
#: database's Nth statement.
_KILLED_AT = """
import os, signal, sys
from pathlib import Path
from sqlalchemy import event
from sqlalchemy.engine import Engine
from casefolio.config import Settings
from casefolio.db import migrate

seen = 0
@event.listens_for(Engine, "before_cursor_execute")
def _count(*_args):
    global seen
    seen += 1
    if seen == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)

migrate.upgrade(Settings(data_dir=Path(sys.argv[1]), database_url=""))
"""


def _schema(data_dir: Path) -> dict[str, list[str]]:
    """Each table's, index's and trigger's definition as a sorted list of its lines (a batch
    rebuild writes a table's constraints in no fixed order, also between two fresh runs)."""
    with sqlite3.connect(data_dir / "casefolio.db") as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master").fetchall()
    return {
        name: sorted(line.strip().rstrip(",") for line in (sql or "").splitlines())
        for name, sql in rows
    }


@pytest.mark.parametrize("statement", [6, 60, 160])
def test_an_upgrade_killed_halfway_is_completed_by_the_next(tmp_path: Path, statement: int) -> None:
    fresh = tmp_path / "fresh"
    migrate.upgrade(Settings(data_dir=fresh, database_url=""))
    killed = tmp_path / "killed"
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_AT, str(killed), str(statement)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr  # it was killed, not finished
    migrate.upgrade(Settings(data_dir=killed, database_url=""))
    assert _schema(killed) == _schema(fresh)
