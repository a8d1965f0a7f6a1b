# ruff: noqa: E501  (the table of cases reads best one case a line)
"""Every text the API stores has one limit, the same in both dialects (issue 19, item 4),
and file names follow one rule however they are sent (item 11)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from casefolio.db.engine import Database
from casefolio.domain import text
from tests.api.snapshots import snapshot
from tests.api.v1.conftest import make_matter
from tests.factories import Actor

LONG_DESCRIPTION = "x" * (text.MAX_DESCRIPTION + 1)


@pytest.fixture
async def world(client: httpx.AsyncClient, db: Database, operator: Actor) -> dict[str, Any]:
    matter = await make_matter(client, db, operator)
    document = await client.post(
        matter.url("/documents"),
        content=b"exhibit",
        params={"fileName": "exhibit.txt"},
        headers={**operator.headers, "Content-Type": "text/plain"},
    )
    assert document.status_code == 201, document.text
    return {"p": matter.id, "d": document.json()["id"], "headers": operator.headers}


OVER_LIMIT: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("PATCH", "/api/v3/documents/{d}", {"json": {"description": {"raw": LONG_DESCRIPTION}}}, 422, "description"),
    ("PATCH", "/api/v3/documents/{d}", {"json": {"description": LONG_DESCRIPTION}}, 422, "description"),
    ("PATCH", "/api/v1/projects/{p}/documents/{d}", {"json": {"description": LONG_DESCRIPTION}}, 400, "description"),
    ("PATCH", "/api/v1/projects/{p}", {"json": {"description": LONG_DESCRIPTION}}, 400, "description"),
    ("POST", "/api/v1/projects/{p}/fields", {"json": {"name": "C", "type": "choice", "choices": ["x" * 201]}}, 400, "choices.0"),
    ("POST", "/api/v1/projects/{p}/fields", {"json": {"name": "", "type": "text"}}, 400, "name"),
    ("POST", "/api/v1/teams", {"json": {"name": "t" * 201}}, 400, "name"),
    (
        "POST",
        "/api/v3/documents/{d}/attachments",
        {"files": {"metadata": (None, json.dumps({"fileName": "a.txt", "description": {"raw": LONG_DESCRIPTION}})), "file": ("a.txt", b"a")}},
        422,
        "description",
    ),
    (
        "POST",
        "/api/v3/documents/{d}/attachments",
        {"files": {"metadata": (None, json.dumps({"fileName": "a.txt", "contentType": "t/" + "x" * 300})), "file": ("a.txt", b"a")}},
        422,
        "contentType",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "request_args", "status", "field"), OVER_LIMIT)
async def test_text_over_its_limit_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    db: Database,
    world: dict[str, Any],
    method: str,
    path: str,
    request_args: dict[str, Any],
    status: int,
    field: str,
) -> None:
    before = await snapshot(db)
    response = await client.request(
        method, path.format(**world), headers=world["headers"], **request_args
    )
    assert response.status_code == status, response.text
    if path.startswith("/api/v3"):
        assert response.json()["_embedded"]["details"]["attribute"] == field
    else:
        assert field in [e["field"] for e in response.json()["errors"]]
    assert await snapshot(db) == before


async def test_a_description_at_the_limit_is_stored_in_both_dialects(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    at_limit = "y" * text.MAX_DESCRIPTION
    v3 = await client.patch(
        f"/api/v3/documents/{world['d']}",
        json={"description": {"raw": at_limit}},
        headers=world["headers"],
    )
    assert v3.status_code == 200, v3.text
    v1 = await client.get(
        f"/api/v1/projects/{world['p']}/documents/{world['d']}", headers=world["headers"]
    )
    assert v1.json()["description"] == at_limit


async def _upload_name(client: httpx.AsyncClient, world: dict[str, Any], **how: Any) -> str:
    headers = {**world["headers"], **how.pop("headers", {})}
    response = await client.post(f"/api/v1/projects/{world['p']}/documents", headers=headers, **how)
    assert response.status_code == 201, response.text
    name: str = response.json()["currentVersion"]["fileName"]
    return name


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("C:\\Users\\me\\brief.pdf", "brief.pdf"),
        ("/home/me/brief.pdf", "brief.pdf"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("a\u2066b\u2069\u200b\x85c\x1f.txt", "abc.txt"),
        ("n" * 300 + ".pdf", "n" * 251 + ".pdf"),
    ],
)
async def test_one_file_name_rule_for_the_query_and_the_metadata(
    client: httpx.AsyncClient, world: dict[str, Any], sent: str, stored: str
) -> None:
    by_query = await _upload_name(
        client,
        world,
        content=b"q",
        params={"fileName": sent},
        headers={"Content-Type": "text/plain"},
    )
    by_metadata = await _upload_name(
        client,
        world,
        files={"file": ("x.bin", b"m"), "metadata": (None, json.dumps({"fileName": sent}))},
    )
    assert by_query == by_metadata == stored


async def test_a_browser_style_windows_path_keeps_its_last_segment(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    # What a browser on Windows sends: the path as is, its backslashes unescaped.
    raw = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="C:\\Users\\me\\brief.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n%PDF brief\r\n--b0undary--\r\n"
    )
    name = await _upload_name(
        client,
        world,
        content=raw,
        headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert name == "brief.pdf"


async def test_a_long_multipart_filename_is_shortened_like_a_long_query_one(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    sent = "m" * 300 + ".docx"
    by_part = await _upload_name(client, world, files={"file": (sent, b"p")})
    assert by_part == "m" * 250 + ".docx"
