"""Offset-paginated collections: `offset` is a 1-based page number, as in OpenProject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.api.v3.hal import Json, link
from casefolio.api.v3.problems import invalid_query
from casefolio.db.models import MAX_ID

MAX_PAGE_SIZE = 1000  # OpenProject's apiv3_max_page_size default
# A later page lies past the end of any table, and its row offset would overflow a BIGINT.
MAX_PAGE = MAX_ID // MAX_PAGE_SIZE

#: The query parameters of an offset collection, as the OpenAPI document gives them: integers
#: spelled in digits (leading zeros and all), or empty for the default.
Offset = Annotated[
    str | None,
    Query(
        description="Page number, from 1.",
        max_length=20,
        json_schema_extra={"pattern": r"^(-?[0-9]+)?$"},
    ),
]
# JSON in the query string. Bounded so that any URL within the bounds, each character
# percent-encoded (up to 12 bytes), stays under the 64 KiB the HTTP server reads of a
# request line: a longer one never reaches the app, and is a plain-text 400.
SortBy = Annotated[str | None, Query(alias="sortBy", max_length=1000)]
Filters = Annotated[
    str | None,
    Query(
        max_length=4000,
        description='OpenProject\'s filters as JSON: `[{"name": {"operator": "=", "values":'
        ' ["1"]}}]`. The filters of each collection, such as the full-text `search` and'
        " `attachment_content` of documents, are listed in docs/api-v3.md.",
    ),
]
PageSize = Annotated[
    str | None,
    Query(
        alias="pageSize",
        description=f"Elements per page, 0 to {MAX_PAGE_SIZE}; -1 for the maximum.",
        max_length=20,
        json_schema_extra={"pattern": r"^(-1|[0-9]+)?$"},
    ),
]


@dataclass(frozen=True)
class PageParams:
    page: int  # 1-based
    size: int  # 0 ..= MAX_PAGE_SIZE

    @property
    def skip(self) -> int:
        return (self.page - 1) * self.size


def _integer(raw: str, name: str) -> int:
    # The query parameter's max_length bounds the digits; int() takes leading zeros.
    body = raw[1:] if raw.startswith("-") else raw
    if not body.isascii() or not body.isdigit():
        raise invalid_query(f"{name} must be an integer.")
    return int(raw)


def parse(offset: str | None, page_size: str | None, *, default_size: int) -> PageParams:
    """Given the raw query values, return the page to show.

    Like OpenProject: a missing or non-positive offset is page 1; pageSize -1 (or anything
    above the maximum) means the maximum; 0 shows no elements but still counts them. Values
    that are not integers, or a pageSize below -1, are refused with 400 InvalidQuery.
    """
    page = _integer(offset, "Offset") if offset not in (None, "") else 1
    size = _integer(page_size, "Page size") if page_size not in (None, "") else default_size
    if size < -1:
        raise invalid_query("Page size must be -1 (the maximum) or greater.")
    if size == -1 or size > MAX_PAGE_SIZE:
        size = MAX_PAGE_SIZE
    return PageParams(page=min(max(page, 1), MAX_PAGE), size=size)


@dataclass(frozen=True)
class CollectionQuery:
    """What a collection request asks for, as sent: its page, sortBy and filters (JSON)."""

    offset: str | None
    page_size: str | None
    sort_by: str | None
    filters: str | None

    def page(self, *, default_size: int) -> PageParams:
        return parse(self.offset, self.page_size, default_size=default_size)


async def collection_query(
    offset: Offset = None,
    page_size: PageSize = None,
    sort_by: SortBy = None,
    filters: Filters = None,
) -> CollectionQuery:
    return CollectionQuery(offset, page_size, sort_by, filters)


CollectionQueryDep = Annotated[CollectionQuery, Depends(collection_query)]


def _href(path: str, page: int | str, size: int | str) -> str:
    # Ruby's to_query sorts the keys: offset before pageSize.
    return f"{path}?offset={page}&pageSize={size}"


def offset_collection(path: str, params: PageParams, total: int, elements: list[Any]) -> Json:
    """Given a collection path, the page asked for, the total and this page's elements, return
    the `Collection` with self/jumpTo/changeSize and the previous/next page links."""
    links: Json = {
        "self": link(_href(path, params.page, params.size)),
        "jumpTo": link(_href(path, "%7Boffset%7D", params.size), templated=True),
        "changeSize": link(_href(path, params.page, "%7Bsize%7D"), templated=True),
    }
    if params.page > 1:
        links["previousByOffset"] = link(_href(path, params.page - 1, params.size))
    if params.size > 0 and params.page * params.size < total:
        links["nextByOffset"] = link(_href(path, params.page + 1, params.size))
    return {
        "_type": "Collection",
        "total": total,
        "count": len(elements),
        "pageSize": params.size,
        "offset": params.page,
        "_embedded": {"elements": elements},
        "_links": links,
    }


def unpaginated_collection(self_href: str, elements: list[Any]) -> Json:
    """The collection a container's attachments come in: no pageSize, offset or paging links."""
    return {
        "_type": "Collection",
        "total": len(elements),
        "count": len(elements),
        "_embedded": {"elements": elements},
        "_links": {"self": link(self_href)},
    }


async def fetch(
    session: AsyncSession, stmt: Select[Any], params: PageParams
) -> tuple[int, list[Any]]:
    """Given an ordered query and a page, return the total number of matches and the page's
    rows (none when pageSize is 0 or the page lies past the end)."""
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    if params.size == 0:
        return int(total or 0), []
    rows = await session.scalars(stmt.offset(params.skip).limit(params.size))
    return int(total or 0), list(rows)
