"""Every kind of v3 response, validated against OpenProject's own JSON schemas (vendored in
schemas/, see schemas/SOURCE.md)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from jsonschema import ValidationError

from tests.api.v3.conformance import check_v3_response
from tests.api.v3.conftest import (
    HAL_JSON,
    SCHEMAS,
    Conformance,
    Matter,
    Validate,
    add_attachment_v3,
    basic,
    upload_v1,
)
from tests.factories import Actor


async def _get(client: httpx.AsyncClient, path: str, actor: Actor, status: int = 200) -> Any:
    response = await client.get(path, headers=basic(actor))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == HAL_JSON
    return response.json()


@pytest.mark.parametrize(
    ("example", "schema"),
    [
        ("documents_list.json", "documents_collection.json"),
        ("document.json", "document.json"),
        ("attachment_model.json", "attachment.json"),
        ("attachment.json", "attachment_legacy.json"),
        ("root.json", "root.json"),
        ("error_document_not_found.json", "error.json"),
        ("error_attachment_not_found.json", "error.json"),
        ("error_missing_permission.json", "error.json"),
    ],
)
def test_vendored_examples_conform_to_their_schemas(
    validate: Validate, example: str, schema: str
) -> None:
    validate(schema, json.loads((SCHEMAS / "examples" / example).read_text()))


@pytest.mark.parametrize(
    ("example", "schema"),
    [
        # paths/documents.yml's 400 sends `message` as a list; error_response.yml and the
        # current code (RaiseQueryErrors) say a string. casefolio follows the schema.
        ("error_invalid_query.json", "error.json"),
        # paths/attachment.yml's example predates `status`.
        ("attachment.json", "attachment.json"),
    ],
)
def test_upstream_examples_that_contradict_the_current_schemas(
    validate: Validate, example: str, schema: str
) -> None:
    with pytest.raises(ValidationError):
        validate(schema, json.loads((SCHEMAS / "examples" / example).read_text()))


@pytest.mark.parametrize(
    ("schema", "payload"),
    [
        ("attachment.json", {"title": "a", "fileName": "a", "digest": "md5"}),
        ("attachment_legacy.json", {"fileName": "a", "status": "uploaded"}),
        ("user.json", {"_type": "User", "id": 1, "name": "A", "avatar": 7, "_links": {}}),
        ("link.json", {"title": "no href"}),
        ("collection.json", {"_type": "Collection", "total": 0, "count": 0, "_links": {}}),
        ("error.json", {"_type": "Error", "message": "no identifier"}),
    ],
)
def test_schemas_reject_payloads_that_break_them(
    validate: Validate, schema: str, payload: Any
) -> None:
    with pytest.raises(ValidationError):
        validate(schema, payload)


async def test_root_and_users_conform(
    client: httpx.AsyncClient, matter: Matter, validate: Validate
) -> None:
    validate("root.json", await _get(client, "/api/v3", matter.reader))
    me = await _get(client, "/api/v3/users/me", matter.reader)
    validate("user.json", me)
    assert me["email"] == matter.reader.email
    other = await _get(client, f"/api/v3/users/{matter.admin.user_id}", matter.reader)
    validate("user.json", other)
    assert "email" not in other  # only the user themself or an operator sees it


async def test_projects_conform(
    client: httpx.AsyncClient, matter: Matter, validate: Validate
) -> None:
    collection = await _get(client, "/api/v3/projects", matter.reader)
    validate("collection.json", collection)
    [element] = collection["_embedded"]["elements"]
    validate("project.json", element)
    validate("project.json", await _get(client, f"/api/v3/projects/{matter.id}", matter.reader))


async def test_documents_and_attachments_conform(
    client: httpx.AsyncClient, matter: Matter, validate: Validate
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer, metadata={"description": "A *note*"})
    added = await add_attachment_v3(client, int(doc["id"]), matter.writer)
    assert added.status_code == 201, added.text
    validate("attachment.json", added.json())

    collection = await _get(client, "/api/v3/documents", matter.admin)
    validate("documents_collection.json", collection)
    validate("collection.json", collection)

    document = await _get(client, f"/api/v3/documents/{doc['id']}", matter.admin)
    validate("document.json", document)
    validate("project.json", document["_embedded"]["project"])
    validate("attachments_collection.json", document["_embedded"]["attachments"])

    listed = await _get(client, f"/api/v3/documents/{doc['id']}/attachments", matter.admin)
    validate("attachments_collection.json", listed)
    assert listed["count"] == 2

    one = await _get(client, f"/api/v3/attachments/{added.json()['id']}", matter.admin)
    validate("attachment.json", one)
    validate("document.json", one["_embedded"]["container"])
    validate("user.json", one["_embedded"]["author"])

    patched = await client.patch(
        f"/api/v3/documents/{doc['id']}", json={"title": "Renamed"}, headers=basic(matter.writer)
    )
    assert patched.status_code == 200, patched.text
    validate("document.json", patched.json())


async def test_errors_conform(
    client: httpx.AsyncClient, matter: Matter, validate: Validate
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    version_id = int(doc["currentVersion"]["id"])
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/api/v3/documents", {}, 401),
        ("GET", "/api/v3/documents?sortBy=nonsense", basic(matter.reader), 400),
        ("GET", f"/api/v3/documents/{doc['id']}", basic(matter.outsider), 404),
        ("GET", f"/api/v3/attachments/{version_id}", basic(matter.outsider), 404),
        ("DELETE", f"/api/v3/attachments/{version_id}", basic(matter.reader), 403),
        ("DELETE", f"/api/v3/attachments/{version_id}", basic(matter.admin), 409),
    ]
    for method, path, headers, status in cases:
        response = await client.request(method, path, headers=headers)
        assert response.status_code == status, (method, path, response.text)
        assert response.headers["content-type"] == HAL_JSON
        validate("error.json", response.json())
    too_long = await client.patch(
        f"/api/v3/documents/{doc['id']}", json={"title": "x" * 61}, headers=basic(matter.writer)
    )
    assert too_long.status_code == 422
    validate("error.json", too_long.json())
    not_multipart = await client.post(
        f"/api/v3/documents/{doc['id']}/attachments", content=b"x", headers=basic(matter.writer)
    )
    assert not_multipart.status_code == 415
    validate("error.json", not_multipart.json())


async def test_the_client_hook_validates_every_v3_response(
    client: httpx.AsyncClient, matter: Matter, conformance: Conformance
) -> None:
    doc = await upload_v1(client, matter.id, matter.writer)
    await client.get(f"/api/v3/documents/{doc['id']}", headers=basic(matter.reader))
    await client.get("/api/v3/documents?filters=nonsense", headers=basic(matter.reader))
    await client.get(f"/api/v3/documents/{doc['id']}", headers=basic(matter.outsider))
    assert conformance.checked == [
        ("GET", f"/api/v3/documents/{doc['id']}", 200),
        ("GET", "/api/v3/documents", 400),
        ("GET", f"/api/v3/documents/{doc['id']}", 404),
    ]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        # the old InvalidQuery form, an array message
        (400, {"_type": "Error", "errorIdentifier": "x", "message": ["a"]}),
        # an attachment without `status` (the current schema) or `title` (the older one)
        (200, json.loads((SCHEMAS / "examples" / "attachment.json").read_text())),
        (200, json.loads((SCHEMAS / "examples" / "attachment_model.json").read_text())),
        # a collection the hook has no schema for
        (200, {"_type": "Collection", "total": 0, "count": 0, "_links": {}}),
        (500, {"detail": "not an OpenProject error"}),
    ],
)
def test_the_hook_refuses_what_breaks_the_schemas(
    validate: Validate, status: int, body: dict[str, Any]
) -> None:
    with pytest.raises(AssertionError):
        check_v3_response("GET", "/api/v3/x", _hal(status, body))


def test_the_hook_refuses_an_empty_avatar_and_takes_null(validate: Validate) -> None:
    user = {
        "_type": "User",
        "id": 1,
        "name": "A",
        "avatar": "",
        "_links": {"self": {"href": "/api/v3/users/1"}},
    }
    with pytest.raises(AssertionError, match=r"breaks user\.json"):
        check_v3_response("GET", "/api/v3/users/1", _hal(200, user))
    check_v3_response("GET", "/api/v3/users/1", _hal(200, {**user, "avatar": None}))


def _hal(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"content-type": HAL_JSON})
