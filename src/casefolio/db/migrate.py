"""Apply Alembic migrations from code, for `casefolio serve`, `casefolio migrate` and the tests."""

from __future__ import annotations

from pathlib import Path

import anyio
from alembic import command
from alembic.config import Config

from casefolio.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    """Given settings, return an Alembic config pointing at our migrations and database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["url"] = settings.effective_database_url
    return config


def upgrade(settings: Settings) -> None:
    """Bring the database schema to the newest revision (blocking; env.py runs its own loop)."""
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), "head")


async def upgrade_async(settings: Settings) -> None:
    """Run `upgrade` in a worker thread, since Alembic's env.py starts an event loop of its own."""
    await anyio.to_thread.run_sync(upgrade, settings)
