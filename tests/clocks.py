"""Clocks a test moves by hand, for code that takes its time as an argument: no sleeps."""

from __future__ import annotations

from datetime import datetime, timedelta

from casefolio.db.types import utcnow


class Clock:
    """A datetime clock (the worker's, the indexer's, sessions'), starting at the real now."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def catch_up(self) -> None:
        """To the real now, if behind it: what the server stamped with the real clock since
        this one started (a delivery queued at "now") is due by this one too, however long
        the requests took on a loaded machine."""
        self.now = max(self.now, utcnow())


class Seconds:
    """A clock of seconds (time.monotonic's or time.time's kind), starting at `start`."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
