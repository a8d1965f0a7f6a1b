"""Column types shared by the models."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Dialect, String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Return the current UTC time truncated to milliseconds, the precision the API shows.

    Storing exactly what we render means a sync client that sends back a timestamp it saw
    compares equal to the stored value, on SQLite and PostgreSQL alike.
    """
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def rfc3339(value: datetime) -> str:
    """Given an aware datetime, return RFC 3339 UTC with milliseconds: 2026-01-31T12:00:00.123Z,
    as the APIs, events and audit entries write every time."""
    if value.tzinfo is not UTC:  # the database's values are UTC already: no conversion
        value = value.astimezone(UTC)
    # As isoformat(timespec="milliseconds") with "Z" for "+00:00", without formatting the
    # zone, and each field's digits looked up rather than formatted: a page of a hundred
    # documents renders up to three hundred.
    year = value.year
    return (
        f"{year if year >= 1000 else f'{year:04d}'}-{_TWO[value.month]}-{_TWO[value.day]}"
        f"T{_TWO[value.hour]}:{_TWO[value.minute]}:{_TWO[value.second]}"
        f".{_THREE[value.microsecond // 1000]}Z"
    )


_TWO = tuple(f"{n:02d}" for n in range(100))
_THREE = tuple(f"{n:03d}" for n in range(1000))


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zones, so values are stored naive in UTC and re-tagged on the way out.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name == "sqlite":
            # SQLite's text (what the bind side stores: naive UTC, ISO 8601) straight to an
            # aware datetime, in one step instead of a parse, then a call and a copy to set
            # the zone: a page of a hundred documents converts three hundred.
            return _from_sqlite_text
        # The driver's naive datetime tagged UTC, as process_result_value does, without the
        # decorator's wrapper and checks on every value (PostgreSQL's drivers return
        # datetimes for timestamp columns).
        impl = self.impl_instance.result_processor(dialect, coltype)
        if impl is None:
            return _tagged_utc
        return lambda value: _tagged_utc(impl(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value)}")
        return value.replace(tzinfo=UTC)


#: Naive database values already tagged UTC: `replace(tzinfo=)` costs several times a
#: lookup, and a read repeats instants (a document's created and updated times, its
#: version's, a list polled again). Bounded; emptied when full.
_TAGGED: dict[datetime, datetime] = {}
_TAGGED_MAX = 4096


def _tagged_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return _TAGGED[value]
    except KeyError:
        pass
    if len(_TAGGED) >= _TAGGED_MAX:
        _TAGGED.clear()
    tagged = _TAGGED[value] = value.replace(tzinfo=UTC)
    return tagged


def _from_sqlite_text(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value + "+00:00")


class instant_text(FunctionElement[str]):
    """A UTCDateTime column read as its text, `YYYY-MM-DD HH:MM:SS.ffffff` in UTC, on either
    database (SQLite's stored text, PostgreSQL's to_char), without a datetime: for reads that
    show many timestamps and compute nothing with them (a page of documents shows three per
    document; parsing each into a datetime and formatting it again was most of a page's
    cost). `rfc3339_of_text` shows it, `instant_of` makes it the instant again (a cursor)."""

    type = String()
    name = "instant_text"
    inherit_cache = True


@compiles(instant_text, "sqlite")
def _instant_text_sqlite(element: instant_text, compiler: SQLCompiler, **kw: Any) -> str:
    # What the bind side stores (other shapes SQLite may hold are taken the long way).
    return compiler.process(next(iter(element.clauses)), **kw)


@compiles(instant_text, "postgresql")
def _instant_text_postgresql(element: instant_text, compiler: SQLCompiler, **kw: Any) -> str:
    # `timestamp without time zone` holding UTC: no session time zone involved; YYYY pads
    # to four digits and US gives all six fractional digits, as SQLite's stored text has.
    # Text: asyncpg's datetimes cost the server several times what to_char costs the
    # database (bench/README.md), and a cast to text would follow the session's DateStyle.
    value = compiler.process(next(iter(element.clauses)), **kw)
    return f"to_char({value}, 'YYYY-MM-DD HH24:MI:SS.US')"


class lowered(FunctionElement[str]):
    """Text in lower case by Unicode's rules on both databases: PostgreSQL's lower(); on
    SQLite, whose own lower() knows only ASCII (`CAFÉ` stayed `cafÉ`), `casefolio_lower`
    (Python's str.lower), which every connection registers (`register_functions`).

    The two differ (PostgreSQL lowers U+0130 to `i`, Python to `i` and U+0307; Python lowers
    a word's final capital sigma to U+03C2, PostgreSQL to U+03C3), so a case-insensitive
    comparison lowers both of its sides with this function (`lowered_text`), never one of
    them in Python."""

    type = String()
    name = "lowered"
    inherit_cache = True


@compiles(lowered)
def _lowered(element: lowered, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(next(iter(element.clauses)), **kw)})"


@compiles(lowered, "sqlite")
def _lowered_sqlite(element: lowered, compiler: SQLCompiler, **kw: Any) -> str:
    return f"casefolio_lower({compiler.process(next(iter(element.clauses)), **kw)})"


def lowered_text(value: str) -> ColumnElement[str]:
    """A value from a client, lowered by the database as `lowered` lowers a column."""
    return lowered(literal(value, String()))


def register_functions(conn: sqlite3.Connection) -> None:
    """Given a new SQLite connection, register the functions casefolio's statements use."""
    conn.create_function("casefolio_lower", 1, _lower, deterministic=True)


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


#: Instant texts already cut into RFC 3339: a document filed once and never changed shows
#: one instant three times, and a page polled again repeats them all. Bounded; emptied
#: when full.
_RFC3339: dict[str, str] = {}


def rfc3339_of_text(value: str) -> str:
    """Given an instant as `instant_text` reads it, return it as api/v1/schemas.py `rfc3339`
    writes it (RFC 3339 UTC with milliseconds, cut, not rounded)."""
    try:
        return _RFC3339[value]
    except KeyError:
        pass
    if len(value) == 26 and value[19] == ".":
        # YYYY-MM-DD HH:MM:SS.ffffff: date, time, milliseconds.
        text = f"{value[:10]}T{value[11:23]}Z"
    else:
        # Anything else SQLite may hold that the reads take (no fraction, say).
        text = datetime.fromisoformat(value).isoformat(timespec="milliseconds") + "Z"
    if len(_RFC3339) >= _TAGGED_MAX:
        _RFC3339.clear()
    _RFC3339[value] = text
    return text


def instant_of(text: str) -> datetime:
    """Given an instant as `instant_text` reads it, return the aware UTC datetime
    UTCDateTime reads (as it reads SQLite's text)."""
    return datetime.fromisoformat(text + "+00:00")
