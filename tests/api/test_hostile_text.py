# ruff: noqa: E501  (the table of cases reads best one case a line)
"""Text that PostgreSQL cannot store (a NUL) or that is not Unicode (a lone surrogate), and
JSON nested without end: a 400 naming the field in both dialects and on both databases,
never a 500, and nothing stored (issue 19, items 1 to 3)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from casefolio.db.engine import Database
from tests.api.snapshots import snapshot
from tests.api.v1.conftest import make_matter
from tests.factories import Actor

NUL = "a\x00b"
JSON = {"Content-Type": "application/json"}
DEEP = "[" * 100_000


def raw_json(document: str) -> dict[str, Any]:
    """A body sent byte for byte: json.dumps would escape a surrogate just the same, but
    httpx's `json=` cannot encode one."""
    return {"content": document.encode(), "headers": JSON}


def multipart(metadata: str, name: str = "meta") -> dict[str, Any]:
    return {"files": {"file": ("a.txt", b"abc", "text/plain"), name: (None, metadata)}}


def meta(metadata: str) -> dict[str, Any]:
    return multipart(metadata, "metadata")


# (method, path ({p} project, {d} document, {f} field, {e} a member's e-mail), request
# keywords, what the error names)
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/v1/projects", {"json": {"name": NUL}}, "name"),
    ("POST", "/api/v1/projects/{p}/folders", {"json": {"name": NUL}}, "name"),
    ("POST", "/api/v1/projects/{p}/fields", {"json": {"name": NUL, "type": "text"}}, "name"),
    ("POST", "/api/v1/teams", {"json": {"name": NUL}}, "name"),
    ("POST", "/api/v1/users", {"json": {"email": "a@x", "name": NUL}}, "name"),
    ("POST", "/api/v1/users", {"json": [{"email": "a\x00@x", "name": "A"}]}, "0.email"),
    ("POST", "/api/v1/tokens", {"json": {"userId": "1", "name": NUL}}, "name"),
    ("POST", "/api/v1/templates", {"json": {"name": "T", "folders": [{"name": NUL}]}}, "folders.0.name"),
    ("PATCH", "/api/v1/projects/{p}", {"json": {"description": NUL}}, "description"),
    ("PATCH", "/api/v1/projects/{p}/documents/{d}", {"json": {"title": NUL}}, "title"),
    ("POST", "/api/v1/projects/{p}/documents", meta(json.dumps({"title": NUL})), "metadata.title"),
    ("POST", "/api/v1/projects/{p}/documents", meta('{"title": "\\ud800"}'), "metadata.title"),
    ("POST", "/api/v1/projects/{p}/documents", meta(DEEP), "metadata"),
    ("POST", "/api/v1/projects/{p}/documents/{d}/replace", meta(json.dumps({"description": NUL})), "metadata.description"),
    ("PUT", "/api/v1/projects/{p}/documents/{d}/fields/{f}", raw_json('{"value": "\\ud800"}'), "value"),
    ("PUT", "/api/v1/projects/{p}/documents/{d}/fields/{f}", {"json": {"value": NUL}}, "value"),
    ("POST", "/api/v1/projects", raw_json('{"name": "\\udfff"}'), "name"),
    ("POST", "/api/v1/projects", raw_json(DEEP), "body"),
    # One line anyone can read: no control characters, no bidi controls.
    ("POST", "/api/v1/projects/{p}/folders", {"json": {"name": "Minutes\nDraft"}}, "name"),
    ("POST", "/api/v1/teams", {"json": {"name": "Litigation\u0007"}}, "name"),
    ("PATCH", "/api/v1/projects/{p}/documents/{d}", {"json": {"title": "invoice\u202efdp.exe"}}, "title"),
    ("GET", "/api/v1/user/byemail?email=a%00b@x", {}, "email"),
    ("GET", "/api/v1/projects/{p}/folders/a%00b", {}, "path"),
    ("PUT", "/api/v1/projects/{p}/users/a%00b@x", {}, "path"),
    ("GET", "/api/v1/projects/{p}/documents?afterDate=2026%00", {}, "afterDate"),
    # %-escapes that are not UTF-8 (Latin-1's é): percent-decoding made them U+FFFD.
    ("POST", "/api/v1/projects/{p}/documents?fileName=%E9.txt", {"content": b"x", "headers": {"Content-Type": "text/plain"}}, "fileName"),
    ("POST", "/api/v1/projects/{p}/documents/{d}/replace?fileName=%FF%FE.txt", {"content": b"x", "headers": {"Content-Type": "text/plain"}}, "fileName"),
    ("GET", "/api/v1/user/byemail?email=%FF@x", {}, "email"),
    ("PUT", "/api/v1/projects/{p}/users/%E9@x", {}, "path"),
    ("PATCH", "/api/v3/documents/{d}", {"json": {"title": NUL}}, "title"),
    ("PATCH", "/api/v3/documents/{d}", {"json": {"description": {"raw": NUL}}}, "description.raw"),
    ("PATCH", "/api/v3/documents/{d}", raw_json('{"title": "\\udfff"}'), "title"),
    ("PATCH", "/api/v3/documents/{d}", raw_json('{"title": "\\ud800"}'), "title"),
    ("PATCH", "/api/v3/documents/{d}", raw_json(DEEP), "body"),
    ("POST", "/api/v3/documents/{d}/attachments", meta(json.dumps({"fileName": "a", "description": {"raw": NUL}})), "description.raw"),
    ("POST", "/api/v3/documents/{d}/attachments", meta('{"fileName": "\\udfff"}'), "fileName"),
    ("POST", "/api/v3/documents/{d}/attachments", meta(DEEP), "metadata"),
    ("GET", "/api/v3/documents", {"params": {"filters": json.dumps([{"title": {"operator": "~", "values": [NUL]}}])}}, "filters"),
    ("GET", "/api/v3/documents", {"params": {"filters": '[{"title": {"operator": "~", "values": ["\\ud800"]}}]'}}, "filters"),
    ("GET", "/api/v3/documents", {"params": {"filters": "[" * 3900}}, "filters"),
    ("GET", "/api/v3/documents", {"params": {"sortBy": "[" * 990}}, "sortBy"),
]  # fmt: skip


@pytest.fixture
async def world(client: httpx.AsyncClient, db: Database, operator: Actor) -> dict[str, Any]:
    matter = await make_matter(client, db, operator)
    field = await client.post(
        matter.url("/fields"), json={"name": "Custodian", "type": "text"}, headers=operator.headers
    )
    document = await client.post(
        matter.url("/documents"),
        content=b"exhibit",
        params={"fileName": "exhibit.txt"},
        headers={**operator.headers, "Content-Type": "text/plain"},
    )
    assert field.status_code == document.status_code == 201, (field.text, document.text)
    return {
        "p": matter.id,
        "d": document.json()["id"],
        "f": field.json()["id"],
        "headers": operator.headers,
    }


@pytest.mark.parametrize(("method", "path", "request_args", "field"), CASES)
async def test_text_that_cannot_be_stored_is_400_naming_the_field(
    client: httpx.AsyncClient,
    db: Database,
    world: dict[str, Any],
    method: str,
    path: str,
    request_args: dict[str, Any],
    field: str,
) -> None:
    before = await snapshot(db)
    headers = {**world["headers"], **request_args.pop("headers", {})}
    url = path.format(**world)
    response = await client.request(method, url, headers=headers, **request_args)
    assert response.status_code == 400, response.text
    body = response.json()
    if url.startswith("/api/v3"):
        assert response.headers["content-type"].startswith("application/hal+json")
        assert body["_type"] == "Error"
        assert body["errorIdentifier"].split(":")[-1] in ("InvalidQuery", "InvalidRequestBody")
        assert field in json.dumps(body)
    else:
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in body.get("errors", [])] or field in body["detail"]
    assert await snapshot(db) == before


async def test_the_refusal_keeps_the_connection_usable(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    # After a refusal the same client goes on: nothing was left half-done on its connection.
    for _ in range(3):
        refused = await client.patch(
            f"/api/v3/documents/{world['d']}",
            content=DEEP.encode(),
            headers={**world["headers"], **JSON},
        )
        assert refused.status_code == 400
        fine = await client.get(f"/api/v3/documents/{world['d']}", headers=world["headers"])
        assert fine.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/projects"), ("PATCH", "/api/v3/documents/{d}")],
)
async def test_deep_nesting_says_so_in_both_dialects(
    client: httpx.AsyncClient, world: dict[str, Any], method: str, path: str
) -> None:
    response = await client.request(
        method,
        path.format(**world),
        content=DEEP.encode(),
        headers={**world["headers"], **JSON},
    )
    assert response.status_code == 400
    assert "nested more than 64 levels" in response.text
