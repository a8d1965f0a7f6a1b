"""Fixtures of the outbound tests: the v1 matter (a project with one actor per role)."""

from __future__ import annotations

from tests.api.v1.conftest import Matter, make_matter, matter

__all__ = ["Matter", "make_matter", "matter"]
