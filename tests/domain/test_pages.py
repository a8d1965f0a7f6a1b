from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from casefolio.domain.errors import Invalid
from casefolio.domain.pages import decode_cursor, encode_cursor


def test_cursor_round_trips_datetimes_and_ids() -> None:
    key = (datetime(2026, 1, 31, 12, 0, 0, 123000, tzinfo=UTC), 42)
    assert decode_cursor(encode_cursor(key), (datetime, int)) == key


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        encode_cursor((1, 2)),
        encode_cursor(("x",)),
        encode_cursor((True,)),
        # JSON nested past the decoder's recursion limit (a page's cursor has no length cap)
        base64.urlsafe_b64encode(b"[" * 3000).decode(),
    ],
)
def test_tampered_cursors_are_invalid(cursor: str) -> None:
    with pytest.raises(Invalid, match="cursor is not valid"):
        decode_cursor(cursor, (int,))


@pytest.mark.parametrize(
    "key",
    [
        ("2026-01-31T12:00:00", 1),  # no zone: the columns hold aware instants
        ("9999-12-31T23:59:59-23:59", 1),  # after the last instant, once in UTC
        ("2026-01-31T12:00:00+00:00", 2**63),  # past the 64-bit columns
        ("2026-01-31T12:00:00+00:00", -(2**63) - 1),
    ],
)
def test_forged_keys_no_column_holds_are_invalid(key: tuple[object, ...]) -> None:
    with pytest.raises(Invalid, match="cursor is not valid"):
        decode_cursor(encode_cursor(key), (datetime, int))


def test_a_cursor_at_the_edges_of_the_columns_is_read_in_utc() -> None:
    later = datetime(2026, 1, 31, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    key = decode_cursor(encode_cursor((later, 2**63 - 1)), (datetime, int))
    assert key == (datetime(2026, 1, 31, 12, 0, tzinfo=UTC), 2**63 - 1)
    assert key[0].tzinfo is UTC
