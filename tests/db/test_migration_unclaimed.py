"""Migration 0002_h24 (containerless uploads) runs both ways on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from casefolio.config import Settings
from casefolio.db import migrate


async def _nullable_and_rows(url: str) -> tuple[bool, int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda sync: inspect(sync).get_columns("document_versions")
            )
            rows = await conn.scalar(text("SELECT count(*) FROM document_versions"))
    finally:
        await engine.dispose()
    [document_id] = [c for c in columns if c["name"] == "document_id"]
    return bool(document_id["nullable"]), int(rows or 0)


async def _add_unclaimed(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO document_versions (document_id, number, file_name, "
                    "content_type, size, sha256, description, created_at) VALUES "
                    "(NULL, 0, 'a.txt', 'text/plain', 1, :sha, '', CURRENT_TIMESTAMP)"
                ),
                {"sha": "0" * 64},
            )
    finally:
        await engine.dispose()


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

    assert anyio.run(_nullable_and_rows, url) == (True, 0)
    anyio.run(_add_unclaimed, url)
    command.downgrade(config, "0001")
    # unclaimed uploads have nowhere to go in the old schema: they are deleted
    assert anyio.run(_nullable_and_rows, url) == (False, 0)
    command.upgrade(config, "head")
    assert anyio.run(_nullable_and_rows, url) == (True, 0)
