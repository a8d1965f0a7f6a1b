"""Migration 0009_ids: SQLite's tables whose rows are deleted keep their rows and ids and
hand out no id twice from then on, nor one the audit trail names for a row deleted before
the upgrade; downgrading puts the old tables back, rows intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command

from casefolio.config import Settings
from casefolio.db import migrate

_ROWS = """
INSERT INTO projects (id, name, description, download_via_api, created_at, updated_at)
    VALUES (1, 'Matter', '', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00');
INSERT INTO folders (id, project_id, parent_key, name, created_at)
    VALUES (4, 1, 0, 'Pleadings', '2026-01-01 00:00:00'),
           (9, 1, 0, 'Drafts', '2026-01-01 00:00:00');
-- Folder 12 and document 7 were created (and are gone) before the upgrade.
INSERT INTO audit_entries (at, actor_kind, action, target_type, target_id, project_id, details)
    VALUES ('2026-01-01 00:00:00', 'user', 'folder.created', 'folder', 12, 1, '{}'),
           ('2026-01-01 00:00:00', 'user', 'folder.deleted', 'folder', 12, 1, '{}'),
           ('2026-01-01 00:00:00', 'user', 'document.purged', 'document', 7, 1, '{}');
"""


def _folders(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, name FROM folders ORDER BY id").fetchall()


def _new_folder_after_deleting_the_newest(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM folders WHERE id = 9")
        made = conn.execute(
            "INSERT INTO folders (project_id, parent_key, name, created_at) "
            "VALUES (1, 0, 'Later', '2026-01-02 00:00:00')"
        )
        new_id = made.lastrowid
        conn.rollback()
    assert new_id is not None
    return new_id


def test_rows_and_ids_survive_and_no_id_is_given_twice(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{db}")
    config = migrate.alembic_config(settings)
    command.upgrade(config, "0008_h22u")
    with sqlite3.connect(db) as conn:
        conn.executescript(_ROWS)
    # The old schema: the largest id left plus one, below the deleted 9 (so 9 comes again).
    assert _new_folder_after_deleting_the_newest(db) == 5

    migrate.upgrade(settings)

    assert _folders(db) == [(4, "Pleadings"), (9, "Drafts")]
    assert _new_folder_after_deleting_the_newest(db) == 13  # past the audited folder 12
    with sqlite3.connect(db) as conn:
        made = conn.execute(
            "INSERT INTO documents (project_id, title, description, last_version_number,"
            " created_at, updated_at) VALUES (1, 'New', '', 0, '2026-01-02', '2026-01-02')"
        )
        assert made.lastrowid == 8  # past the purged document 7, though none is left
        conn.rollback()
    command.downgrade(config, "0008_h22u")
    assert _folders(db) == [(4, "Pleadings"), (9, "Drafts")]
    assert _new_folder_after_deleting_the_newest(db) == 5
