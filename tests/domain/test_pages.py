from __future__ import annotations

from datetime import UTC, datetime

import pytest

from casefolio.domain.errors import Invalid
from casefolio.domain.pages import decode_cursor, encode_cursor


def test_cursor_round_trips_datetimes_and_ids() -> None:
    key = (datetime(2026, 1, 31, 12, 0, 0, 123000, tzinfo=UTC), 42)
    assert decode_cursor(encode_cursor(key), (datetime, int)) == key


@pytest.mark.parametrize(
    "cursor", ["", "!!!", encode_cursor((1, 2)), encode_cursor(("x",)), encode_cursor((True,))]
)
def test_tampered_cursors_are_invalid(cursor: str) -> None:
    with pytest.raises(Invalid, match="cursor is not valid"):
        decode_cursor(cursor, (int,))
