"""Timestamps: what SQLite stores reads back as the aware UTC instant it was, the API's
RFC 3339 rendering is isoformat's, to the millisecond, with Z, and the text lists read
(`instant_text`) is the instant, shown as that rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    bindparam,
    create_engine,
    insert,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import create_async_engine

from casefolio.db.types import UTCDateTime, instant_of, instant_text, rfc3339, rfc3339_of_text

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


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.datetimes(min_value=datetime(1, 1, 1), timezones=st.just(UTC)),
        min_size=1,
        max_size=20,
    )
)
def test_the_database_reads_any_instant_as_text_of_that_instant(
    database_url: str, instants: list[datetime]
) -> None:
    """`instant_text` (the list's timestamps, as text: SQLite's stored text, PostgreSQL's
    to_char) is the instant stored, to the microsecond (`instant_of`, a page's cursor), and
    is shown as `rfc3339` shows it, whatever its year and microseconds."""

    async def read() -> list[str]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                values = [
                    instant_text(bindparam(f"at_{n}", at, type_=UTCDateTime))
                    for n, at in enumerate(instants)
                ]
                return list((await conn.execute(select(*values))).one())
        finally:
            await engine.dispose()

    texts = anyio.run(read)
    assert [instant_of(text) for text in texts] == instants
    for _ in range(2):  # the second time from the memo
        assert [rfc3339_of_text(text) for text in texts] == [rfc3339(at) for at in instants]


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("2026-12-05 15:50:44.794000", "2026-12-05T15:50:44.794Z"),
        ("0033-03-09 08:07:06.005999", "0033-03-09T08:07:06.005Z"),
        # Not as the bind side writes it, but what reads take: the long way, the same text.
        ("2026-12-05 15:50:44", "2026-12-05T15:50:44.000Z"),
        ("2026-12-05T15:50:44.5", "2026-12-05T15:50:44.500Z"),
    ],
)
def test_sqlite_text_of_any_stored_shape_is_shown_as_its_instant(stored: str, shown: str) -> None:
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        for _ in range(2):  # the second time from the memo
            text_of = select(instant_text(literal_column(f"'{stored}'")))
            assert rfc3339_of_text(conn.execute(text_of).scalar_one()) == shown
            instant = conn.execute(
                select(type_coerce(literal_column(f"'{stored}'"), UTCDateTime))
            ).scalar_one()
            assert rfc3339(instant) == shown


def test_an_instant_text_is_the_instant_utcdatetime_reads() -> None:
    at = datetime(2026, 12, 5, 15, 50, 44, 794123, tzinfo=UTC)
    assert instant_of("2026-12-05 15:50:44.794123") == at
    assert instant_of("2026-12-05 15:50:44") == at.replace(microsecond=0)
