"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Return the current UTC time truncated to milliseconds, the precision the API shows.

    Storing exactly what we render means a sync client that sends back a timestamp it saw
    compares equal to the stored value, on SQLite and PostgreSQL alike.
    """
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


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
