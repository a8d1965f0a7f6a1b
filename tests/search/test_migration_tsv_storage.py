"""Migration 0005_h25p (the tsvector kept in its row on PostgreSQL) runs both ways, and a
text stored before it is found after it; on SQLite it changes nothing."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from casefolio.config import Settings
from casefolio.db import migrate
from tests.db.conftest import pg_settings

__all__ = ["pg_settings"]  # a fixture, asked for by name below

_FOUND = {
    "postgresql": "SELECT count(*) FROM version_texts "
    "WHERE tsv @@ to_tsquery('casefolio_search', 'indemnity')",
    "sqlite": "SELECT count(*) FROM version_texts_fts WHERE version_texts_fts MATCH 'indemnity'",
}
_STORAGE = (
    "SELECT attstorage::text FROM pg_attribute "
    "WHERE attrelid = 'version_texts'::regclass AND attname = 'tsv'"
)


async def _add_text(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO document_versions (document_id, number, file_name, "
                    "content_type, size, sha256, description, created_at) VALUES "
                    "(NULL, 0, 'a.txt', 'text/plain', 1, :sha, '', CURRENT_TIMESTAMP)"
                ),
                {"sha": "1" * 64},
            )
            await conn.execute(
                text(
                    "INSERT INTO version_texts (version_id, status, text, attempts) "
                    "SELECT max(id), 'done', 'the indemnity cap', 0 FROM document_versions"
                )
            )
    finally:
        await engine.dispose()


async def _state(url: str, backend: str) -> tuple[int, str | None]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            found = int(await conn.scalar(text(_FOUND[backend])) or 0)
            storage = await conn.scalar(text(_STORAGE)) if backend == "postgresql" else None
    finally:
        await engine.dispose()
    return found, storage


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_and_downgrade(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'm.db'}")
        migrate.upgrade(settings)
    else:
        settings = request.getfixturevalue("pg_settings")  # migrated to head already
    url = settings.effective_database_url
    config = migrate.alembic_config(settings)
    main = "m" if backend == "postgresql" else None

    assert anyio.run(_state, url, backend) == (0, main)
    command.downgrade(config, "0005_h27v")  # the revision before 0005_h25p
    extended = "x" if backend == "postgresql" else None
    anyio.run(_add_text, url)  # written the old way
    assert anyio.run(_state, url, backend) == (1, extended)
    command.upgrade(config, "head")
    assert anyio.run(_state, url, backend) == (1, main)
