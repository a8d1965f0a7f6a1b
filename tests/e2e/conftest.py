"""Fixtures for end-to-end tests that need a database nobody has migrated yet."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from casefolio.config import Settings
from tests.conftest import PG_ADMIN_URL, _admin_execute


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the suite's dialect (no schema yet), dropped afterwards."""
    if not PG_ADMIN_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    admin = Settings(database_url=PG_ADMIN_URL).effective_database_url
    name = f"casefolio_fresh_{uuid.uuid4().hex[:10]}"
    _admin_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
