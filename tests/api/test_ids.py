"""Ids too large for the database are refused as bad input, wherever a request names one.

Both databases hold 64-bit ids; a larger one used to reach the driver and fail there (a 500),
and on PostgreSQL, in a batch of document reads, would have failed every read in it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from casefolio.db.engine import Database
from casefolio.db.models import MAX_ID, Document
from casefolio.domain import documents, tokens
from casefolio.domain.errors import NotFound
from casefolio.fastpath.statements import StatementReader
from tests.api.snapshots import snapshot
from tests.factories import Actor, file_with_fields

BIG = MAX_ID + 1
HUGE = 2**70

# (method, path with {p} for a project and {d} for a document, request keywords, field named)
REQUESTS: list[tuple[str, str, dict[str, Any], str]] = [
    ("GET", f"/api/v1/projects/{BIG}", {}, "projectId"),
    ("GET", f"/api/v1/projects/{{p}}/documents/{BIG}", {}, "documentId"),
    ("GET", f"/api/v1/projects/{{p}}/documents/{HUGE}", {}, "documentId"),
    ("GET", f"/api/v1/projects/{{p}}/documents/{BIG}/content", {}, "documentId"),
    ("DELETE", f"/api/v1/projects/{{p}}/folders/{BIG}", {}, "folderId"),
    ("PUT", f"/api/v1/projects/{{p}}/documents/{{d}}/{BIG}", {}, "folderId"),
    ("PUT", f"/api/v1/projects/{{p}}/teams/{BIG}", {"json": {"role": "Read Only"}}, "teamId"),
    ("GET", f"/api/v1/user/id/{BIG}", {}, "userId"),
    ("DELETE", f"/api/v1/tokens/{BIG}", {}, "tokenId"),
    ("GET", f"/api/v1/teams/{BIG}/users", {}, "teamId"),
    ("GET", "/api/v1/tokens", {"params": {"userId": str(BIG)}}, "userId"),
    ("GET", "/api/v1/projects/{p}/folders/Pleadings", {"params": {"parentId": BIG}}, "parentId"),
    ("POST", "/api/v1/tokens", {"json": {"userId": BIG, "name": "sync"}}, "userId"),
    ("POST", "/api/v1/projects", {"json": {"name": "Doe", "templateId": BIG}}, "templateId"),
    ("POST", "/api/v1/projects/{p}/folders", {"json": {"name": "A", "parentId": BIG}}, "parentId"),
    (
        "POST",
        "/api/v1/projects/{p}/documents",
        {
            "files": {
                "file": ("a.pdf", b"%PDF a"),
                "metadata": (None, json.dumps({"folderId": BIG})),
            }
        },
        "folderId",
    ),
    (
        "GET",
        "/api/v3/projects",
        {"params": {"filters": json.dumps([{"id": {"operator": "=", "values": [str(BIG)]}}])}},
        "larger than any id",
    ),
]


@pytest.fixture
async def filed(client: httpx.AsyncClient, operator: Actor, db: Database) -> dict[str, int]:
    """A project and a document in it."""
    document = await file_with_fields(client, operator, {})
    async with db.read() as session:
        project = (await session.get_one(Document, document)).project_id
    return {"p": project, "d": document}


@pytest.mark.parametrize(("method", "path", "kwargs", "field"), REQUESTS)
async def test_an_id_too_large_for_the_database_is_a_400_naming_it(
    client: httpx.AsyncClient,
    operator: Actor,
    filed: dict[str, int],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    field: str,
) -> None:
    answer = await client.request(method, path.format(**filed), headers=operator.headers, **kwargs)
    assert answer.status_code == 400, answer.text
    assert field in answer.text


V3_MISSING = "urn:openproject-org:api:v3:errors:NotFound"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (f"/api/v3/documents/{BIG}", "The requested resource could not be found."),
        (f"/api/v3/documents/{HUGE}", "The requested resource could not be found."),
        ("/api/v3/documents/0", "The requested resource could not be found."),
        (f"/api/v3/documents/{BIG}/attachments", "The requested resource could not be found."),
        (f"/api/v3/attachments/{BIG}", "The specified attachment does not exist."),
        ("/api/v3/attachments/0/content", "The specified attachment does not exist."),
    ],
)
async def test_in_v3_an_id_no_row_can_have_is_not_found_as_in_openproject(
    client: httpx.AsyncClient, operator: Actor, filed: dict[str, int], path: str, message: str
) -> None:
    # OpenProject's `Document.visible.find(id)` raises RecordNotFound for any id no row has,
    # too large for the column included: 404 NotFound, not a 400 naming the parameter.
    answer = await client.get(path, headers=operator.headers)
    assert answer.status_code == 404, answer.text
    assert answer.json() == {"_type": "Error", "errorIdentifier": V3_MISSING, "message": message}


async def test_the_largest_id_the_database_holds_is_simply_not_found(
    client: httpx.AsyncClient, operator: Actor, filed: dict[str, int]
) -> None:
    p = filed["p"]
    for path in (f"/api/v1/projects/{p}/documents/{MAX_ID}", f"/api/v3/documents/{MAX_ID}"):
        answer = await client.get(path, headers=operator.headers)
        assert answer.status_code == 404, answer.text


async def test_the_document_read_never_sends_an_impossible_id(
    db: Database, statements: StatementReader, operator: Actor, filed: dict[str, int]
) -> None:
    async with db.read() as session:
        who = (await tokens.authenticate(session, secret=operator.token)).principal
    for document_id in (BIG, HUGE, 0):
        with pytest.raises(NotFound, match=f"Document {document_id} not found"):
            await documents.get(statements, who=who, document_id=document_id)
    found = await documents.get(statements, who=who, document_id=filed["d"])
    assert found.document.id == filed["d"]


#: Digits past Python's limit on converting a digit string to an int (4,300): `int()` raises.
ENDLESS = "9" * 4301
ENDLESS_IDS: list[tuple[str, str, dict[str, Any], int]] = [
    # /api/v3: OpenProject's find() of an id no row has is NotFound.
    ("GET", f"/api/v3/documents/{ENDLESS}", {}, 404),
    ("PATCH", f"/api/v3/documents/{ENDLESS}", {"json": {"title": "x"}}, 404),
    ("GET", f"/api/v3/documents/{ENDLESS}/attachments", {}, 404),
    ("GET", f"/api/v3/attachments/{ENDLESS}", {}, 404),
    ("GET", f"/api/v3/attachments/{ENDLESS}/content", {}, 404),
    ("DELETE", f"/api/v3/attachments/{ENDLESS}", {}, 404),
    ("DELETE", f"/api/v1/projects/{{p}}/folders/{ENDLESS}", {}, 400),
    ("GET", f"/api/v1/projects/{{p}}/documents/{{d}}/versions/{ENDLESS}", {}, 400),
    ("GET", f"/api/v1/projects/{{p}}/documents/{{d}}/versions/{ENDLESS}/content", {}, 400),
    ("DELETE", f"/api/v1/projects/{{p}}/documents/{{d}}/versions/{ENDLESS}", {}, 400),
    ("POST", f"/api/v1/projects/{{p}}/trash/versions/{ENDLESS}/restore", {}, 400),
    ("PUT", f"/api/v1/projects/{{p}}/documents/{{d}}/{ENDLESS}", {}, 400),
    (
        "GET",
        "/api/v3/documents",
        {"params": {"filters": json.dumps([{"id": {"operator": "=", "values": [ENDLESS]}}])}},
        400,
    ),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), ENDLESS_IDS)
async def test_numbers_longer_than_python_converts_are_refused_or_read_as_past_the_end(
    client: httpx.AsyncClient,
    operator: Actor,
    filed: dict[str, int],
    db: Database,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
) -> None:
    before = await snapshot(db)
    answer = await client.request(method, path.format(**filed), headers=operator.headers, **kwargs)
    assert answer.status_code == status, answer.text[:300]
    assert await snapshot(db) == before
