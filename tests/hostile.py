"""Hostile values more than one walk sends (tests/api/test_bad_input.py, tests/web/)."""

from __future__ import annotations

import base64
import json
from typing import Any


def _crafted_cursor(key: list[Any]) -> str:
    # As casefolio encodes its cursors (domain/pages.py): a client can forge any key.
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


# Cursors well-formed but holding keys no database column can take.
CURSOR_VALUES = [
    _crafted_cursor(key)
    for key in (
        [2**63],  # one past the largest 64-bit integer
        [-(2**63) - 1],
        [2**70, 1],
        ["2026-01-01T00:00:00", 1],  # a time without a zone
        ["2026-01-01T00:00:00Z", 2**64],
        ["0x1p+1", 2**64],  # a search cursor's score, then an id past 64 bits
        ["9999-12-31T23:59:59-23:59", 1],  # past the last instant once in UTC
        ["\ud800", 1],  # a title key no column holds: a lone surrogate
        ["a\u0000b", 1],  # a NUL
        ["0x1p99999", 1],  # a search cursor's score past the largest float
    )
] + [
    # Not a list of keys at all: arrays nested deeper than Python's JSON decoder recurses.
    base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("="),
]
