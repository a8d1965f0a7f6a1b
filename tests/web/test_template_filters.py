"""The pages' own template filters answer as what they replace."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from jinja2.filters import do_filesizeformat

from casefolio.web.http import file_size, time_element


@given(st.one_of(st.integers(0, 10**30), st.sampled_from([0, 1, 999, 1000, 10**24, 10**27])))
def test_file_size_is_jinjas_filesizeformat(size: int) -> None:
    assert file_size(size) == do_filesizeformat(size)


# From the year 1000: strftime writes earlier years with fewer digits (ISO's four are kept).
@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)))
def test_a_time_element_shows_the_minute_and_its_zone_and_carries_the_instant(
    instant: datetime,
) -> None:
    shown = time_element(instant)
    assert shown == (
        f'<time datetime="{instant.isoformat()}">{instant.strftime("%Y-%m-%d %H:%M")} UTC</time>'
    )
