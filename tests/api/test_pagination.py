"""The Link to the next page keeps every other query parameter, as Starlette's URL would."""

from __future__ import annotations

import pytest
from fastapi import Request, Response

from casefolio.api.pagination import link_next
from casefolio.domain.pages import Page

QUERIES = [
    b"",
    b"limit=10",
    b"limit=10&cursor=abc",
    b"cursor=abc&limit=10&afterDate=2026-01-01T00:00:00Z",
    b"afterDate=2026-01-01T00:00:00%2B01:00&limit=5",
    b"a=1&a=2&cursor=x&cursor=y&b=",
    b"flag&x=%20y+z&%C3%A9=%E2%80%A8",
    b"q=a?b&limit=2",
    b"q=a#frag&limit=2",
    b"q=\xc3\xa9&limit=3",
    b"limit=1&limit=2",
]


def _request(path: str, query: bytes) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
    }
    return Request(scope)


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("path", ["/api/v1/projects/7/documents", "/odd/pa\\th"])
def test_the_next_link_is_what_starlettes_url_gives(path: str, query: bytes) -> None:
    request = _request(path, query)
    response = Response()
    link_next(request, response, Page([], "Wzk5XQ"))
    url = request.url.include_query_params(cursor="Wzk5XQ")
    assert response.headers["link"] == f'<{url.path}?{url.query}>; rel="next"'


def test_the_last_page_has_no_link() -> None:
    response = Response()
    link_next(_request("/p", b"limit=1"), response, Page([], None))
    assert "link" not in response.headers
