"""Placeholder replaced by the webhook worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from casefolio.config import Settings
from casefolio.db.engine import Database


@asynccontextmanager
async def running_worker(settings: Settings, db: Database) -> AsyncIterator[None]:
    yield
