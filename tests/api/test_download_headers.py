"""Downloads cannot be turned against the site (nosniff, a sandboxing CSP), ranges follow
RFC 9110, and 405's Allow names only what a path accepts (issue 19, items 8 and 9)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from casefolio.db.engine import Database
from tests.api.v1.conftest import make_matter
from tests.factories import Actor

PAGE = b"<html><script>alert(document.cookie)</script></html>"


@pytest.fixture
async def world(client: httpx.AsyncClient, db: Database, operator: Actor) -> dict[str, Any]:
    matter = await make_matter(client, db, operator)
    document = await client.post(
        matter.url("/documents"),
        content=PAGE,
        params={"fileName": "page.html"},
        headers={**operator.headers, "Content-Type": "text/html"},
    )
    assert document.status_code == 201, document.text
    doc = document.json()
    base = f"/api/v1/projects/{matter.id}/documents/{doc['id']}"
    return {
        "p": matter.id,
        "headers": operator.headers,
        "urls": [
            f"{base}/content",
            f"{base}/versions/{doc['currentVersion']['id']}/content",
            f"/api/v3/attachments/{doc['currentVersion']['id']}/content",
        ],
        "base": base,
    }


async def test_content_is_never_sniffed_nor_run_as_a_page(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    for url in world["urls"]:
        for extra in ({}, {"Range": "bytes=0-5"}):
            response = await client.get(url, headers={**world["headers"], **extra})
            assert response.status_code in (200, 206), response.text
            assert response.headers["content-type"].startswith("text/html")
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
            assert response.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize("header", ["bytes=5-2", "bytes=x-y", "items=0-3", "bytes=0-1,4-5"])
async def test_an_invalid_or_unsupported_range_is_ignored(
    client: httpx.AsyncClient, world: dict[str, Any], header: str
) -> None:
    for url in world["urls"]:
        response = await client.get(url, headers={**world["headers"], "Range": header})
        assert response.status_code == 200, (url, response.text)
        assert response.content == PAGE


async def test_a_range_past_the_end_is_416_in_the_dialect_error_format(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    for url in world["urls"]:
        response = await client.get(url, headers={**world["headers"], "Range": "bytes=500-"})
        assert response.status_code == 416, response.text
        assert response.headers["content-range"] == f"bytes */{len(PAGE)}"
        if url.startswith("/api/v3"):
            assert response.json()["_type"] == "Error"
        else:
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == 416


ENDLESS = "9" * 4301  # past Python's limit on converting a digit string to an int


@pytest.mark.parametrize(
    ("header", "status", "body"),
    [
        (f"bytes={ENDLESS}-", 416, b""),  # starts past any file's end
        (f"bytes=-{ENDLESS}", 206, PAGE),  # the last N bytes, N past any size: all of them
        (f"bytes=0-{ENDLESS}", 206, PAGE),  # to a position past the end: all of them
    ],
)
async def test_range_positions_longer_than_python_converts_are_past_the_end(
    client: httpx.AsyncClient, world: dict[str, Any], header: str, status: int, body: bytes
) -> None:
    for url in world["urls"]:
        answer = await client.get(url, headers={**world["headers"], "Range": header})
        assert answer.status_code == status, answer.text[:300]
        if status == 206:
            assert answer.content == body


@pytest.mark.parametrize(
    ("method", "tail", "allow"),
    [
        ("PUT", "/content", "GET, HEAD"),
        ("DELETE", "/content", "GET, HEAD"),
        ("PUT", "/replace", "POST"),
        ("PUT", "/versions", "GET, HEAD"),
    ],
)
async def test_allow_names_only_the_methods_a_document_path_accepts(
    client: httpx.AsyncClient, world: dict[str, Any], method: str, tail: str, allow: str
) -> None:
    response = await client.request(method, world["base"] + tail, headers=world["headers"])
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow


async def test_a_folder_name_path_allows_only_reading(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    created = await client.post(
        f"/api/v1/projects/{world['p']}/folders",
        json={"name": "Pleadings"},
        headers=world["headers"],
    )
    assert created.status_code == 201
    response = await client.delete(
        f"/api/v1/projects/{world['p']}/folders/Pleadings", headers=world["headers"]
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    still = await client.get(
        f"/api/v1/projects/{world['p']}/folders/Pleadings", headers=world["headers"]
    )
    assert still.status_code == 200
    by_id = await client.delete(
        f"/api/v1/projects/{world['p']}/folders/{created.json()['id']}", headers=world["headers"]
    )
    assert by_id.status_code == 204


@pytest.mark.parametrize(
    "sent", ["text/\U0009ac93", "plain text", "text/plain\r\nX-Evil: 1", "t/" + "x" * 300]
)
async def test_a_content_type_that_cannot_be_a_header_is_replaced_by_the_guessed_one(
    client: httpx.AsyncClient, world: dict[str, Any], sent: str
) -> None:
    # schemathesis stored "text/\U0009ac93" through /api/v3 metadata; its download was a 500.
    documents = world["base"].rsplit("/", 1)[0]
    uploads = []
    if sent.isascii() and "\r" not in sent:  # what an HTTP client lets through as a header
        v1 = await client.post(
            documents,
            content=b"v1",
            params={"fileName": "notes.txt"},
            headers={**world["headers"], "Content-Type": sent},
        )
        assert v1.status_code == 201, v1.text
        uploads.append((f"{documents}/{v1.json()['id']}/content", "text/plain"))
    v3 = await client.post(
        "/api/v3/attachments",
        files={
            "metadata": (None, json.dumps({"fileName": "notes.txt", "contentType": sent})),
            "file": ("notes.txt", b"v3", "text/markdown"),
        },
        headers=world["headers"],
    )
    assert v3.status_code in (201, 422), v3.text  # 422: over v3's 255 characters
    if v3.status_code == 201:  # the part's own type is the next choice
        uploads.append((f"/api/v3/attachments/{v3.json()['id']}/content", "text/markdown"))
    assert uploads
    for url, expected in uploads:
        download = await client.get(url, headers=world["headers"])
        assert download.status_code == 200, download.text
        assert download.headers["content-type"].split(";")[0] == expected


async def _file(
    client: httpx.AsyncClient, world: dict[str, Any], data: bytes, name: str, content_type: str
) -> list[str]:
    """File `data` as a new document of the world's project; return its v1 and v3 content
    URLs."""
    documents = world["base"].rsplit("/", 1)[0]
    filed = await client.post(
        documents,
        content=data,
        params={"fileName": name},
        headers={**world["headers"], "Content-Type": content_type},
    )
    assert filed.status_code == 201, filed.text
    version = filed.json()["currentVersion"]["id"]
    return [f"{documents}/{filed.json()['id']}/content", f"/api/v3/attachments/{version}/content"]


@pytest.mark.parametrize("stored", ["text/plain", "text/csv; charset=iso-8859-1", "text/html"])
async def test_a_download_carries_the_stored_type_as_it_was_stored(
    client: httpx.AsyncClient, world: dict[str, Any], stored: str
) -> None:
    # No charset is added to a text type stored without one: the bytes may be in any.
    urls = await _file(client, world, "Kläger".encode("latin-1"), "notes.txt", stored)
    for url in urls:
        for method in ("GET", "HEAD"):
            download = await client.request(method, url, headers=world["headers"])
            assert download.status_code == 200, download.text
            assert download.headers.get_list("content-type") == [stored]


@pytest.mark.parametrize("header", ["bytes=-10", "bytes=0-", "bytes=0-0"])
async def test_any_range_of_an_empty_file_is_416(
    client: httpx.AsyncClient, world: dict[str, Any], header: str
) -> None:
    for url in await _file(client, world, b"", "empty.txt", "text/plain"):
        answer = await client.get(url, headers={**world["headers"], "Range": header})
        assert answer.status_code == 416, (url, answer.headers)
        assert answer.headers["content-range"] == "bytes */0"


@pytest.mark.parametrize(
    ("name", "stand_in"),
    [
        ("my file.txt", "my file.txt"),
        ('100% "quoted"; x, y.txt', "100% _quoted_; x, y.txt"),
        ("Café ﬁnal.txt", "Cafe final.txt"),
        ("契約書.pdf", "___.pdf"),
    ],
)
async def test_a_name_a_header_cannot_carry_as_is_comes_in_both_forms(
    client: httpx.AsyncClient, db: Database, operator: Actor, name: str, stand_in: str
) -> None:
    """RFC 6266: the exact name in filename* (what browsers and wget save), after it an
    ASCII stand-in in filename (what curl -OJ saves; it had saved every such file as
    `content`)."""
    matter = await make_matter(client, db, operator)
    filed = await client.post(
        matter.url("/documents"),
        content=b"x",
        params={"fileName": name},
        headers={**operator.headers, "Content-Type": "text/plain"},
    )
    assert filed.status_code == 201, filed.text
    for url in (
        matter.url(f"/documents/{filed.json()['id']}/content"),
        f"/api/v3/attachments/{filed.json()['currentVersion']['id']}/content",
    ):
        header = (await client.get(url, headers=operator.headers)).headers["content-disposition"]
        assert header.isascii()
        extended = re.search(r"; filename\*=UTF-8''([^;\s]+)$", header)
        assert extended is not None and unquote(extended.group(1), errors="strict") == name
        assert re.search(r'; filename="((?:[^"\\]|\\.)*)"', header).group(1) == stand_in  # type: ignore[union-attr]


#: What a HEAD must say as its GET does (RFC 9110 9.3.2), content-length included.
SAME_ON_HEAD = (
    "etag",
    "last-modified",
    "content-type",
    "content-length",
    "content-disposition",
    "accept-ranges",
    "cache-control",
    "x-content-type-options",
    "content-security-policy",
)


async def test_head_sends_the_headers_get_sends(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    for url in world["urls"]:
        got = await client.get(url, headers=world["headers"])
        head = await client.head(url, headers=world["headers"])
        assert (got.status_code, head.status_code) == (200, 200), url
        assert head.content == b""
        for name in SAME_ON_HEAD:
            assert head.headers.get(name) == got.headers.get(name), (url, name)
        assert got.headers["last-modified"].endswith(" GMT"), url


async def test_if_modified_since_answers_304_unless_if_none_match_is_sent(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    # A version's own URLs: its bytes never change. (A document's current content: below.)
    for url in world["urls"][1:]:
        got = await client.get(url, headers=world["headers"])
        stamp = got.headers["last-modified"]
        filed = parsedate_to_datetime(stamp)
        earlier = format_datetime(filed - timedelta(seconds=1), usegmt=True)
        later = format_datetime(filed + timedelta(days=1), usegmt=True)
        for since, status in ((stamp, 304), (later, 304), (earlier, 200), ("yesterday", 200)):
            for method in ("GET", "HEAD"):
                answer = await client.request(
                    method, url, headers={**world["headers"], "If-Modified-Since": since}
                )
                assert answer.status_code == status, (url, method, since)
                if status == 304:
                    assert answer.content == b""
                    assert answer.headers["etag"] == got.headers["etag"]
                    assert answer.headers["last-modified"] == stamp
        # RFC 9110 13.1.3: with If-None-Match, If-Modified-Since is not looked at.
        for etag, status in (('"other"', 200), (got.headers["etag"], 304)):
            answer = await client.get(
                url, headers={**world["headers"], "If-None-Match": etag, "If-Modified-Since": later}
            )
            assert answer.status_code == status, (url, etag)


async def test_a_documents_current_content_is_revalidated_by_its_etag_only(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    """Its bytes change (a replacement in the same second as the version before, an older
    version current again once the newer is deleted): If-Modified-Since cannot tell."""
    url = world["urls"][0]
    h = world["headers"]
    first = await client.get(url, headers=h)
    replaced = await client.post(
        url.replace("/content", "/replace"),
        content=b"the second version",
        params={"fileName": "second.txt"},
        headers={**h, "Content-Type": "text/plain"},
    )
    assert replaced.status_code == 201, replaced.text
    later = format_datetime(
        parsedate_to_datetime(first.headers["last-modified"]) + timedelta(days=1), usegmt=True
    )

    again = await client.get(url, headers={**h, "If-Modified-Since": later})

    assert again.status_code == 200 and again.content == b"the second version"
    kept = await client.get(url, headers={**h, "If-None-Match": again.headers["etag"]})
    assert kept.status_code == 304
