"""A migration never runs under a running server or worker of the installation: with one
running, a database that needs migrating is refused (naming what to do) and left as it was,
and one with nothing to migrate lets every other command through."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from casefolio.config import Settings
from casefolio.db import migrate


def _revision(settings: Settings) -> str | None:
    with sqlite3.connect(settings.data_dir / "casefolio.db") as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_a_migration_waits_for_no_server_and_never_runs_under_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url="")
    migrate.upgrade(settings)
    config = migrate.alembic_config(settings)
    head = ScriptDirectory.from_config(config).get_current_head()
    previous = ScriptDirectory.from_config(config).get_revision(head).down_revision
    assert isinstance(previous, str)
    with migrate.serving(settings):  # as `casefolio serve` holds it while it runs
        migrate.upgrade(settings)  # nothing to migrate: other commands go on working
        command.stamp(config, previous)  # as if this casefolio were newer than the server
        with pytest.raises(migrate.ServersRunning, match="stop it, then run `casefolio migrate`"):
            migrate.upgrade(settings)
        assert _revision(settings) == previous  # nothing was migrated
    command.stamp(config, head)
    migrate.upgrade(settings)  # with the server gone it goes through
    assert _revision(settings) == head


def test_a_command_that_waited_for_a_migration_is_not_held_by_the_server_that_follows(
    tmp_path: Path,
) -> None:
    """`serve` and `init` started at once: one migrates (the lock held exclusively), then
    serves (held shared); the other, having waited for the migration, goes on while the
    server runs instead of waiting for the lock to come free (it never would)."""
    settings = Settings(data_dir=tmp_path / "data", database_url="")
    migrate.upgrade(settings)
    fd = os.open(settings.data_dir / migrate.SERVING_LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a migrating `serve`
        waiting = threading.Thread(target=migrate.upgrade, args=(settings,), daemon=True)
        waiting.start()
        fcntl.flock(fd, fcntl.LOCK_SH)  # migrated: now serving
        waiting.join(timeout=60)
        assert not waiting.is_alive(), "the other command still waits for the lock"
    finally:
        os.close(fd)
