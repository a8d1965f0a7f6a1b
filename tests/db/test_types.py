"""Timestamps: what SQLite stores reads back as the aware UTC instant it was, and the API's
RFC 3339 rendering is isoformat's, to the millisecond, with Z."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select

from casefolio.api.v1.schemas import rfc3339
from casefolio.db.types import UTCDateTime

INSTANTS = [
    datetime(2026, 12, 5, 15, 50, 44, 794000, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, 0, 999, tzinfo=UTC),
    datetime(33, 3, 9, 8, 7, 6, 5000, tzinfo=UTC),
    datetime(999, 10, 11, 12, 13, 14, 999999, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2024, 2, 29, 12, 0, 0, 1500, tzinfo=timezone(timedelta(hours=-5))),
]


@pytest.mark.parametrize("instant", INSTANTS)
def test_rfc3339_is_isoformat_to_the_millisecond_with_z(instant: datetime) -> None:
    expected = instant.astimezone(UTC).isoformat(timespec="milliseconds")
    assert rfc3339(instant) == expected.removesuffix("+00:00") + "Z"


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),  # a day in, so that any offset stays in range in UTC
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    )
)
def test_rfc3339_of_any_instant_is_isoformats(instant: datetime) -> None:
    expected = instant.astimezone(UTC).isoformat(timespec="milliseconds")
    assert rfc3339(instant) == expected.removesuffix("+00:00") + "Z"


def test_sqlite_reads_back_each_instant_aware_in_utc() -> None:
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
    )
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"id": i, "at": at} for i, at in enumerate(INSTANTS)])
        conn.execute(insert(table), [{"id": 99, "at": None}])
        rows = dict(conn.execute(select(table.c.id, table.c.at)).all())
    assert rows.pop(99) is None
    assert [rows[i] for i in range(len(INSTANTS))] == INSTANTS
    assert all(rows[i].tzinfo is UTC for i in rows)


def test_postgresql_values_come_back_aware_in_utc_however_often_read() -> None:
    """PostgreSQL's driver hands back naive UTC datetimes; the processor tags them, from a
    bounded memo when an instant repeats (db/types.py `_tagged_utc`)."""
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]
    process = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    assert process is not None
    assert process(None) is None
    naive = [instant.astimezone(UTC).replace(tzinfo=None) for instant in INSTANTS]
    for _ in range(2):  # the second time from the memo
        assert [process(value) for value in naive] == [i.astimezone(UTC) for i in INSTANTS]
        assert all(process(value).tzinfo is UTC for value in naive)
    # Past the memo's bound: still each its own instant.
    base = datetime(2026, 12, 5)
    many = [base + timedelta(milliseconds=n) for n in range(10_000)]
    assert [process(value) for value in many] == [v.replace(tzinfo=UTC) for v in many]
