"""`?limit=` and `?cursor=` in, a `Link: <…>; rel="next"` header out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Query, Request, Response

from casefolio.domain.pages import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest, request_after

T = TypeVar("T")
#: A cursor is unpadded URL-safe base64 (domain/pages.py).
CURSOR_PATTERN = "^[A-Za-z0-9_-]+$"
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1 to 1000).")]
Cursor = Annotated[
    str | None,
    Query(
        max_length=512,
        pattern=CURSOR_PATTERN,
        description="Opaque cursor from the previous page's Link header.",
    ),
]


@dataclass(frozen=True)
class PageParams:
    """The page a list request asks for; the cursor is decoded by the domain that issued it."""

    limit: int
    cursor: str | None


# async: FastAPI runs plain functions and classes used as dependencies in its thread pool.
async def page_params(limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> PageParams:
    return PageParams(limit, cursor)


PageDep = Annotated[PageParams, Depends(page_params)]

#: What a URL treats specially (a fragment, characters urlsplit removes or escapes): a
#: request with any of them has its Link built by Starlette's URL itself.
_UNUSUAL = re.compile(r"[#?\\\t\r\n]")


@dataclass(frozen=True)
class Listing:
    """A list request: the page it asks for, and the answer that links to the next one.

    A handler passes `listing.page` to the domain and returns what it makes of
    `listing.items(page)`, which also adds the Link header.
    """

    request: Request
    response: Response
    params: PageParams

    @property
    def page(self) -> PageRequest:
        return page_request(self.params)

    def page_by(self, *key_types: type) -> PageRequest:
        """The page request of a list whose cursor holds `key_types` (`page`: one int)."""
        return page_request(self.params, key_types)

    def items(self, page: Page[T]) -> list[T]:
        link_next(self.request, self.response, page)
        return page.items


# One dependency, not one on top of `page_params`: each level is solved per request.
async def listing(
    request: Request, response: Response, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Listing:
    return Listing(request, response, PageParams(limit, cursor))


ListingDep = Annotated[Listing, Depends(listing)]


def link_next(request: Request, response: Response, page: Page[Any]) -> None:
    """Given a page, add the Link header to its successor, keeping every other query parameter."""
    if page.next_cursor is None:
        return
    path, query = request.scope["path"], request.scope["query_string"].decode()
    if _UNUSUAL.search(path) or _UNUSUAL.search(query):
        url = request.url.include_query_params(cursor=page.next_cursor)
        path, query = url.path, url.query
    else:
        # What include_query_params gives, without building and splitting a URL twice: the
        # other parameters in their order, then the cursor (tests/api/test_pagination.py).
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "cursor"]
        kept.append(("cursor", page.next_cursor))
        query = urlencode(kept)
    response.headers["Link"] = f'<{path}?{query}>; rel="next"'


def page_request(params: PageParams, key_types: tuple[type, ...] = (int,)) -> PageRequest:
    """Given the query parameters and the list's key types, return the domain's page request."""
    return request_after(params.cursor, params.limit, key_types)
