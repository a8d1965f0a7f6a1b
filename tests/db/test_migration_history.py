"""The migration history is one line: `casefolio migrate` upgrades to "head", which Alembic
refuses when two migrations name the same parent (branches merged without re-chaining)."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from casefolio.config import Settings
from casefolio.db.migrate import alembic_config


def test_the_migrations_form_one_line_with_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config(Settings()))
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}"
    revisions = list(script.walk_revisions())
    parents = [r.down_revision for r in revisions]
    assert len(parents) == len(set(parents)), "two migrations share a parent"
    assert revisions[-1].down_revision is None
