"""Run `casefolio` commands in-process against the test's data folder and database."""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner, Result

from casefolio.cli import app
from casefolio.config import Settings
from casefolio.db import migrate
from casefolio.db.engine import Database
from casefolio.domain import projects, users
from casefolio.domain.principal import Principal
from casefolio.storage import BlobStore, SpooledFile, open_blob_store

Invoke = Callable[..., Result]


@dataclass(frozen=True)
class Seed:
    project_id: int
    operator: Principal


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "CASEFOLIO_DATA_DIR": str(settings.data_dir),
        "CASEFOLIO_DATABASE_URL": settings.effective_database_url,
    }


@pytest.fixture
def invoke(settings: Settings) -> Invoke:
    """Run a command; extra CASEFOLIO_* variables as keyword arguments (max_upload_bytes=…)."""
    runner = CliRunner()

    def run(*args: str, **extra: str) -> Result:
        env = cli_env(settings) | {f"CASEFOLIO_{k.upper()}": v for k, v in extra.items()}
        return runner.invoke(app, list(args), env=env)

    return run


def in_db(settings: Settings, work: Callable[[Database, BlobStore], object]) -> object:
    """Run `await work(db, blobs)` against the test's database and blob store."""

    async def main() -> object:
        db = Database.open(settings)
        blobs = open_blob_store(settings)
        try:
            return await work(db, blobs)  # type: ignore[misc]
        finally:
            await blobs.close()
            await db.close()

    return anyio.run(main)


@pytest.fixture
def seed(settings: Settings) -> Seed:
    """An operator and an empty project, made through the domain layer."""
    migrate.upgrade(settings)

    async def work(db: Database, blobs: BlobStore) -> Seed:
        async with db.write() as session:
            [user] = await users.create_many(
                session, new_users=[users.NewUser("op@example.com", "Olivia", is_operator=True)]
            )
            who = Principal(user.id, user.email, user.name, True)
            project = await projects.create(session, who=who, name="Smith v Jones")
            return Seed(project.id, who)

    result = in_db(settings, work)
    assert isinstance(result, Seed)
    return result


def spool(blobs: BlobStore, data: bytes) -> SpooledFile:
    """Put `data` in the store's staging folder, ready for `put` or a domain upload."""
    fd, name = tempfile.mkstemp(dir=blobs.staging_dir, prefix="upload-", suffix=".part")
    with open(fd, "wb") as f:
        f.write(data)
    return SpooledFile(Path(name), hashlib.sha256(data).hexdigest(), len(data))


def write_tree(root: Path, files: dict[str, bytes], empty_dirs: tuple[str, ...] = ()) -> Path:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for relative in empty_dirs:
        (root / relative).mkdir(parents=True, exist_ok=True)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def table_rows(output: str) -> list[list[str]]:
    """The rows of the tables a command printed, each a list of its cells' texts: every line
    that column rules (box-drawing or ASCII) split into cells, whatever the table's style."""
    rows = []
    for line in output.splitlines():
        parts = re.split(r"[\u2500-\u257f|]", line)
        cells = [cell.strip() for cell in parts[1:-1]]
        if any(cells):
            rows.append(cells)
    return rows
