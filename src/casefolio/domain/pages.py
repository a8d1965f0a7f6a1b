"""Keyset pagination: a page costs the same wherever it is in the list."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from casefolio.domain import text
from casefolio.domain.errors import Invalid

T = TypeVar("T")
#: What a page is ordered by: mapped attributes, or a table's columns.
KeyColumn = InstrumentedAttribute[Any] | ColumnElement[Any]
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: The range of the 64-bit integer columns (ids, sequence numbers) on both databases.
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class PageRequest:
    """`limit` items after the keyset position `after` (None: from the start)."""

    limit: int = DEFAULT_LIMIT
    after: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(key: tuple[Any, ...]) -> str:
    """Given a keyset position, return an opaque URL-safe cursor."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, types: Sequence[type]) -> tuple[Any, ...]:
    """Given a cursor and the types of its key, return the keyset position or raise Invalid."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(types):
            raise ValueError("wrong shape")
        values: list[Any] = []
        for value, kind in zip(raw, types, strict=True):
            if kind is datetime:
                values.append(_instant(value))
            elif kind is int and isinstance(value, int) and not isinstance(value, bool):
                if not BIGINT_MIN <= value <= BIGINT_MAX:
                    raise ValueError("no column holds it")
                values.append(value)
            elif kind is str and isinstance(value, str):
                if text.unstorable(value):  # no row holds it: a NUL, a lone surrogate
                    raise ValueError("no column holds it")
                values.append(value)
            else:
                raise ValueError("wrong type")
        return tuple(values)
    except (
        ValueError,
        TypeError,
        OverflowError,
        # JSON nested deeper than the decoder recurses: the pages take cursors of any length
        # (a title's can be long), so a forged one can nest that deep.
        RecursionError,
        binascii.Error,
        UnicodeDecodeError,
    ) as exc:
        raise Invalid(
            "The cursor is not valid. Use the `cursor` from the previous page's Link header."
        ) from exc


def _instant(value: str) -> datetime:
    # Cursors hold the aware instants the columns store (db/types.py): one without a zone,
    # or one that leaves the calendar once in UTC, names no position.
    instant = datetime.fromisoformat(value)
    if instant.tzinfo is None:
        raise ValueError("a time without a zone")
    return instant.astimezone(UTC)


def request_after(
    cursor: str | None, limit: int, key_types: Sequence[type] = (int,)
) -> PageRequest:
    """Given a cursor as a client sent it back (None: the first page), the page size and the
    types of the list's key, return the page request or raise Invalid."""
    return PageRequest(limit, decode_cursor(cursor, key_types) if cursor else None)


def _keyset(
    stmt: Select[Any], key: Sequence[KeyColumn], page: PageRequest, descending: bool = False
) -> Select[Any]:
    if descending:
        if page.after is not None:
            stmt = stmt.where(tuple_(*key) < tuple_(*page.after))
        return stmt.order_by(*(k.desc() for k in key)).limit(page.limit + 1)
    if page.after is not None:
        stmt = stmt.where(tuple_(*key) > tuple_(*page.after))
    return stmt.order_by(*key).limit(page.limit + 1)


def _cut(items: list[T], page: PageRequest, key_of: Callable[[T], tuple[Any, ...]]) -> Page[T]:
    if len(items) > page.limit:
        items = items[: page.limit]
        return Page(items, encode_cursor(key_of(items[-1])))
    return Page(items, None)


async def fetch_page(
    session: AsyncSession,
    stmt: Select[T],
    *,
    key: Sequence[KeyColumn],
    page: PageRequest,
    key_of: Callable[[T], tuple[Any, ...]],
    descending: bool = False,
) -> Page[T]:
    """Given a select of entities and its unique ordering key, return one page and the
    cursor of the next; with `descending`, the order (and the cursor's direction) is reversed."""
    items = list((await session.scalars(_keyset(stmt, key, page, descending))).all())
    return _cut(items, page, key_of)


async def fetch_id_page(
    session: AsyncSession, stmt: Select[Any], *, id_column: KeyColumn, page: PageRequest
) -> Page[Any]:
    """Given a select of entities with an `id` and that column, return one page in id order."""
    return await fetch_page(session, stmt, key=[id_column], page=page, key_of=lambda e: (e.id,))


async def fetch_row_page(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    key: Sequence[KeyColumn],
    page: PageRequest,
    make: Callable[[Row[Any]], T],
    key_of: Callable[[T], tuple[Any, ...]],
    descending: bool = False,
) -> Page[T]:
    """`fetch_page` for a select of columns: `make` turns each row into an item; with
    `descending`, the order (and the cursor's direction) is reversed."""
    items = [make(row) for row in await session.execute(_keyset(stmt, key, page, descending))]
    return _cut(items, page, key_of)
