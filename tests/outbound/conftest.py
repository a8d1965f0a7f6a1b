"""Fixtures of the outbound tests: webhooks may point at 127.0.0.0/8 (the test receiver)."""

from __future__ import annotations

import pytest

from casefolio.config import Settings
from tests.api.v1.conftest import Matter, make_matter, matter

__all__ = ["Matter", "make_matter", "matter"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings, with the loopback network allowed for webhook URLs."""
    return settings.model_copy(
        update={"webhook_allowed_networks": ["127.0.0.0/8"], "webhook_timeout_seconds": 5.0}
    )
