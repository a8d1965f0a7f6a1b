"""The OpenAPI document says what the server does, and JSON bodies are typed strictly
(issue 19, item 10)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from casefolio.api.v1.schemas import ApiInput
from casefolio.app import create_app
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.db.models import MAX_ID
from tests.api.snapshots import snapshot
from tests.factories import Actor


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder: Path = tmp_path_factory.mktemp("openapi")
    app = create_app(Settings(data_dir=folder, database_url=f"sqlite+aiosqlite:///{folder}/x.db"))
    document: dict[str, Any] = app.openapi()
    return document


def _bounds(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [
            v if k in ("minimum", "maximum") else b
            for k, v in node.items()
            for b in ([v] if k in ("minimum", "maximum") else _bounds(v))
        ]
    if isinstance(node, list):
        return [b for item in node for b in _bounds(item)]
    return []


def test_every_numeric_bound_is_an_integer_and_the_largest_id_is_exact(
    spec: dict[str, Any],
) -> None:
    bounds = _bounds(spec)
    assert bounds and all(isinstance(b, int) for b in bounds), bounds
    assert MAX_ID in bounds
    assert "e+18" not in json.dumps(spec)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/users",
        "/api/v1/teams",
        "/api/v1/templates",
        "/api/v1/projects/{projectId}/folders",
        "/api/v1/projects/{projectId}/fields",
    ],
)
def test_creates_that_can_conflict_document_409(spec: dict[str, Any], path: str) -> None:
    response = spec["paths"][path]["post"]["responses"]["409"]
    assert "application/problem+json" in response["content"]


def test_every_v3_operation_lists_its_error_responses(spec: dict[str, Any]) -> None:
    operations = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        if path.startswith("/api/v3")
        for method, op in ops.items()
    ]
    assert operations
    for path, method, op in operations:
        for status in ("400", "401", "403", "404", "429"):
            content = op["responses"][status]["content"]
            [(media, body)] = content.items()
            assert media.startswith("application/hal+json"), (path, method, status)
            assert body["schema"]["$ref"].endswith("/V3Error")
    patch = spec["paths"]["/api/v3/documents/{document_id}"]["patch"]["responses"]
    assert {"415", "422"} <= set(patch)


def test_every_v1_write_lists_the_unavailable_and_full_answers(spec: dict[str, Any]) -> None:
    # A write can meet a database or blob store that cannot be reached (503, api/errors.py)
    # and a full disk (507, nothing stored).
    writes = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        if path.startswith("/api/v1")
        for method, op in ops.items()
        if method in ("post", "put", "patch", "delete")
    ]
    assert writes
    for path, method, op in writes:
        for status in ("503", "507"):
            assert "application/problem+json" in op["responses"][status]["content"], (
                path,
                method,
                status,
            )


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/{projectId}/documents",
        "/api/v1/projects/{projectId}/documents/{documentId}/replace",
    ],
)
def test_uploads_document_413_and_409(spec: dict[str, Any], path: str) -> None:
    # An upload over CASEFOLIO_MAX_UPLOAD_BYTES is a 413 (README, docs/api.md), and one whose
    # bytes a clean-up removed while it was filed a 409 (docs/api.md); the schema said neither
    # for a new version, nor the 413 for a new document.
    responses = spec["paths"][path]["post"]["responses"]
    for status in ("409", "413"):
        assert "application/problem+json" in responses[status]["content"], (path, status)


def test_downloads_are_documented_as_any_content_type(spec: dict[str, Any]) -> None:
    downloads = [p for p in spec["paths"] if p.endswith("/content")]
    assert len(downloads) == 3
    for path in downloads:
        ok = spec["paths"][path]["get"]["responses"]["200"]["content"]
        assert ok == {"*/*": {"schema": {"type": "string", "format": "binary"}}}


def _parameter(spec: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    [found] = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name]
    schema: dict[str, Any] = found["schema"]
    return schema


def test_enforced_formats_are_in_the_schema(spec: dict[str, Any]) -> None:
    documents = "/api/v1/projects/{projectId}/documents"
    after = json.dumps(_parameter(spec, documents, "afterDate"))
    assert '"pattern"' in after
    cursor = json.dumps(_parameter(spec, documents, "cursor"))
    assert "A-Za-z0-9_-" in cursor
    version = _parameter(spec, documents + "/{documentId}/versions/{versionId}", "versionId")
    assert version["pattern"] == "^[1-9][0-9]{0,17}$"
    schemas = spec["components"]["schemas"]
    for model, field in [("TeamIn", "name"), ("ProjectIn", "name"), ("FolderIn", "name")]:
        assert schemas[model]["properties"][field]["minLength"] == 1


def test_documented_patterns_match_what_the_server_takes(spec: dict[str, Any]) -> None:
    documents = "/api/v1/projects/{projectId}/documents"
    [pattern] = re.findall(
        r'"pattern": "([^"]+)"', json.dumps(_parameter(spec, documents, "afterDate"))
    )
    pattern = pattern.encode().decode("unicode_escape")
    for good in ("2026-01-31", "2026-01-31T12:00:00Z", "2026-01-31T12:00:00.123+01:00"):
        assert re.fullmatch(pattern, good), good
    for bad in ("yesterday", "2026-01-31T12:00:00", "1700000000", "0000-00-00", "2026-13-01"):
        assert not re.fullmatch(pattern, bad), bad
    assert not re.fullmatch(pattern, "2026-01-31T24:00:00Z")


def _request_body(spec: dict[str, Any], path: str, method: str = "post") -> dict[str, Any]:
    body: dict[str, Any] = spec["paths"][path][method]["requestBody"]
    return body


@pytest.mark.parametrize(
    ("path", "metadata_required"),
    [
        ("/api/v1/projects/{projectId}/documents", False),
        ("/api/v1/projects/{projectId}/documents/{documentId}/replace", False),
        ("/api/v3/attachments", True),
        ("/api/v3/documents/{document_id}/attachments", True),
    ],
)
def test_an_upload_documents_its_required_parts(
    spec: dict[str, Any], path: str, metadata_required: bool
) -> None:
    # schemathesis sent multipart bodies without a `file` part while the schema allowed it.
    body = _request_body(spec, path)
    # v1 also takes the raw bytes as the body, where an empty body is an empty file.
    assert body["required"] is metadata_required
    parts = body["content"]["multipart/form-data"]["schema"]
    assert parts["required"] == (["file", "metadata"] if metadata_required else ["file"])
    assert parts["properties"]["metadata"]["type"] == "object"


def test_the_schema_states_the_checks_the_server_makes(spec: dict[str, Any]) -> None:
    # Each of these was a schema-valid request the server refused, found by schemathesis.
    from casefolio.domain.fields import FIELD_TYPES
    from casefolio.domain.roles import ROLES

    assert _request_body(spec, "/api/v3/documents/{document_id}", "patch")["required"] is True
    assert _parameter(spec, "/api/v3/documents", "offset")["pattern"] == r"^(-?[0-9]+)?$"
    schemas = spec["components"]["schemas"]
    assert schemas["FieldIn"]["properties"]["type"]["enum"] == list(FIELD_TYPES)
    assert schemas["FieldIn"]["else"] == {"properties": {"choices": {"maxItems": 0}}}
    for role in ROLES:
        assert {role.name, role.id} <= set(schemas["GrantIn"]["properties"]["role"]["enum"])
    for model in ("ProjectIn", "TeamIn", "UserIn", "TokenIn", "FieldIn", "TemplateIn"):
        pattern = schemas[model]["properties"]["name"]["pattern"]
        # A name the server trims to nothing never matches; one it keeps always does.
        for blank in (" ", "\f", "\x1f", "\x85", "\u3000"):
            assert not re.search(pattern, blank) and not blank.strip(), (model, blank)
        assert re.search(pattern, " a ")
    [users] = _request_body(spec, "/api/v1/users")["content"].values()
    assert [alt.get("minItems") for alt in users["schema"]["anyOf"]] == [None, 1]
    folder = "/api/v1/projects/{projectId}/folders/{folderId}"
    assert {"405", "409"} <= set(spec["paths"][folder]["delete"]["responses"])
    by_name = "/api/v1/projects/{projectId}/folders/{folderName}"
    assert "409" in spec["paths"][by_name]["get"]["responses"]
    upload = spec["paths"]["/api/v1/projects/{projectId}/documents"]["post"]
    assert "409" in upload["responses"]


@pytest.mark.parametrize("path", ["/api/v3/documents", "/api/v3/projects"])
async def test_every_offset_the_schema_allows_is_taken(
    client: httpx.AsyncClient, operator: Actor, path: str
) -> None:
    pattern = r"^(-?[0-9]+)?$"  # as documented (test above reads the same from the schema)
    cases = [  # offset, pageSize, the page shown (None: one past the end of any table)
        ("0" * 20, "0" * 19 + "5", 1),
        ("0" * 19 + "2", "5", 2),
        ("-" + "9" * 19, "5", 1),
        ("9" * 20, "5", None),
        ("9" * 17, "1000", None),  # its row offset overflowed a BIGINT: a 500 before
    ]
    for offset, size, page in cases:
        assert re.fullmatch(pattern, offset)
        response = await client.get(
            path, params={"offset": offset, "pageSize": size}, headers=operator.headers
        )
        assert response.status_code == 200, (offset, response.text)
        body = response.json()
        assert body["pageSize"] == int(size)
        if page is not None:
            assert body["offset"] == page
        else:
            assert body["_embedded"]["elements"] == []
    refused = await client.get(path, params={"offset": "1.5"}, headers=operator.headers)
    assert refused.status_code == 400
    assert refused.json()["message"] == "Offset must be an integer."


async def test_an_id_at_the_documented_maximum_is_not_refused_as_malformed(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    response = await client.get(f"/api/v1/projects/{MAX_ID}", headers=operator.headers)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "/api/v1/settings", {"integrationsApiEnabled": 0}, "integrationsApiEnabled"),
        (
            "PATCH",
            "/api/v1/settings",
            {"integrationsApiEnabled": "false"},
            "integrationsApiEnabled",
        ),
        ("POST", "/api/v1/projects", {"name": "P", "templateId": 2.0}, "templateId"),
        ("POST", "/api/v1/projects", {"name": "P", "templateId": "2.0"}, "templateId"),
        ("POST", "/api/v1/projects", {"name": "P", "templateId": True}, "templateId"),
        ("POST", "/api/v1/projects", {"name": 5}, "name"),
        ("POST", "/api/v1/tokens", {"userId": "1", "name": "t", "rateLimit": "5"}, "rateLimit"),
        ("POST", "/api/v1/users", {"email": "a@x", "name": "A", "isOperator": 1}, "isOperator"),
    ],
)
async def test_json_bodies_are_strictly_typed(
    client: httpx.AsyncClient,
    db: Database,
    operator: Actor,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    before = await snapshot(db)
    response = await client.request(method, path, json=body, headers=operator.headers)
    assert response.status_code == 400, response.text
    assert any(field in e["field"] for e in response.json()["errors"]), response.json()
    assert await snapshot(db) == before


async def test_an_id_may_be_sent_back_as_the_string_v1_returns(
    client: httpx.AsyncClient, operator: Actor
) -> None:
    template = await client.post(
        "/api/v1/templates", json={"name": "Matter"}, headers=operator.headers
    )
    assert template.status_code == 201
    template_id = template.json()["id"]
    assert isinstance(template_id, str)
    for sent in (template_id, int(template_id)):
        project = await client.post(
            "/api/v1/projects",
            json={"name": f"From {sent!r}", "templateId": sent},
            headers=operator.headers,
        )
        assert project.status_code == 201, project.text
        assert project.json()["templateId"] == template_id


def test_every_json_body_is_a_strict_checked_input(tmp_path: Path) -> None:
    # A body model must be an ApiInput: strict types and the one text rule (a NUL, a lone
    # surrogate, deep nesting) come with it, so a new route cannot forget them.
    app = create_app(
        Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    )
    bodies = [
        (route.path, model)
        for route in app.routes
        if isinstance(route, APIRoute) and route.body_field is not None
        for model in _models(route.body_field.field_info.annotation)
    ]
    assert len(bodies) > 10
    loose = [(path, model.__name__) for path, model in bodies if not issubclass(model, ApiInput)]
    assert loose == []


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models(arg)]


# The most bytes one character takes in a URL: four UTF-8 bytes, each percent-encoded.
_WORST_BYTES_PER_CHAR = 12


def _longest_value(schema: dict[str, Any]) -> int:
    """Characters in the longest value a parameter's schema allows (None if unbounded)."""
    lengths = []
    for alternative in schema.get("anyOf", [schema]):
        if "enum" in alternative:
            lengths.append(max(len(str(v)) for v in alternative["enum"]))
        elif alternative.get("type") == "integer":
            lengths.append(len(str(alternative.get("minimum", -(2**63)))))
            lengths.append(len(str(alternative.get("maximum", 2**63))))
        elif alternative.get("type") in ("null", "boolean"):
            lengths.append(5)
        elif alternative.get("type") == "number":
            lengths.append(len(repr(-2.2250738585072014e-308)))  # the longest float repr
        else:
            assert "maxLength" in alternative, schema  # an unbounded parameter
            lengths.append(alternative["maxLength"])
    return max(lengths)


def test_every_url_the_schema_allows_fits_the_server(spec: dict[str, Any]) -> None:
    """A URL longer than httptools takes never reaches the application (it gets a problem
    from the protocol, tests/e2e/test_server.py): no schema-valid request may be one."""
    from casefolio.cli.http_protocol import MAX_URL_BYTES

    longest = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            size = len(re.sub(r"\{[^}]+\}", "", path))
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("path", "query"):
                    worst = _longest_value(parameter["schema"]) * _WORST_BYTES_PER_CHAR
                    size += worst + (len(parameter["name"]) + 2) * (parameter["in"] == "query")
            longest[f"{method.upper()} {path}"] = size
    assert len(longest) > 80
    too_long = {operation: size for operation, size in longest.items() if size > MAX_URL_BYTES}
    assert too_long == {}
