"""Fixtures of the outbound tests: webhooks may point at 127.0.0.0/8 (the test receiver)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.outbound.worker import Worker
from tests.api.v1.conftest import Matter, make_matter, matter
from tests.clocks import Clock

__all__ = ["Matter", "make_matter", "matter"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings, with the loopback network allowed for webhook URLs."""
    return settings.model_copy(
        update={"webhook_allowed_networks": ["127.0.0.0/8"], "webhook_timeout_seconds": 5.0}
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def worker(settings: Settings, db: Database, clock: Clock) -> AsyncIterator[Worker]:
    """A worker on the test's clock, with a seeded jitter."""
    made = Worker(settings, db, clock=clock, rng=random.Random(1))
    yield made
    await made.close()
