"""`casefolio reindex`: queue every version again and extract them in the command."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import VersionText
from casefolio.storage import BlobStore
from tests.cli.conftest import Invoke, Seed, in_db, invoke, seed, write_tree

__all__ = ["invoke", "seed"]


def _statuses(settings: Settings) -> list[tuple[str, int]]:
    async def work(db: Database, blobs: BlobStore) -> list[tuple[str, int]]:
        async with db.read() as session:
            rows = await session.scalars(select(VersionText).order_by(VersionText.version_id))
            return [(row.status, len(row.text or "")) for row in rows]

    return in_db(settings, work)  # type: ignore[return-value]


def test_reindex_extracts_every_version_of_the_project(
    invoke: Invoke, seed: Seed, settings: Settings, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", {"a.txt": b"alpha text", "b.txt": b"beta text"})
    assert invoke("import", str(source), "--project", str(seed.project_id)).exit_code == 0
    done = invoke("reindex", "--project", str(seed.project_id))
    assert done.exit_code == 0, done.output
    assert "Queued 2 version(s); extracted 2." in done.output
    assert _statuses(settings) == [("done", 10), ("done", 9)]
    queued = invoke("reindex", "--queue-only")
    assert "Queued 2 version(s); the workers extract their text." in queued.output
    assert [status for status, _ in _statuses(settings)] == ["pending", "pending"]


def test_reindex_of_an_unknown_project_says_so(invoke: Invoke, seed: Seed) -> None:
    done = invoke("reindex", "--project", "999")
    assert done.exit_code == 1 and "Project 999 not found." in done.output
