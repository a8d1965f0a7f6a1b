"""Every endpoint of the seed's table exists at its exact path, and every operation is described."""

from __future__ import annotations

import re

import httpx
import pytest

from casefolio.app import create_app
from casefolio.config import Settings

SEED_ENDPOINTS = [
    ("POST", "/tokens"),
    ("GET", "/tokens"),
    ("DELETE", "/tokens"),
    ("GET", "/roles"),
    ("GET", "/users"),
    ("GET", "/user/id/{userId}"),
    ("GET", "/user/byemail"),
    ("POST", "/users"),
    ("GET", "/teams"),
    ("GET", "/teams/{teamId}/users"),
    ("PUT", "/teams/{teamId}/users/{email}"),
    ("DELETE", "/teams/{teamId}/users/{email}"),
    ("GET", "/projects"),
    ("GET", "/projects/{projectId}"),
    ("POST", "/projects"),
    ("GET", "/projects/{projectId}/teams"),
    ("PUT", "/projects/{projectId}/teams/{teamId}"),
    ("DELETE", "/projects/{projectId}/teams/{teamId}"),
    ("GET", "/projects/{projectId}/users"),
    ("PUT", "/projects/{projectId}/users/{email}"),
    ("DELETE", "/projects/{projectId}/users/{email}"),
    ("GET", "/templates"),
    ("GET", "/projects/{projectId}/folders"),
    ("GET", "/projects/{projectId}/folders/{folderName}"),
    ("POST", "/projects/{projectId}/folders"),
    ("DELETE", "/projects/{projectId}/folders/{folderId}"),
    ("GET", "/projects/{projectId}/documents"),
    ("POST", "/projects/{projectId}/documents"),
    ("GET", "/projects/{projectId}/documents/folder/{folderId}"),
    ("GET", "/projects/{projectId}/documents/{documentId}"),
    ("PUT", "/projects/{projectId}/documents/{documentId}/{folderId}"),
    ("POST", "/projects/{projectId}/documents/{documentId}/replace"),
    ("GET", "/projects/{projectId}/fields"),
    ("PUT", "/projects/{projectId}/documents/{documentId}/fields/{fieldId}"),
]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    # Generating the schema is slow; one per module, straight from the app (no database needed).
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi")))
    return app.openapi()


@pytest.mark.parametrize(("method", "path"), SEED_ENDPOINTS)
def test_seed_endpoint_is_documented_at_its_exact_path(
    spec: dict,
    method: str,
    path: str,  # type: ignore[type-arg]
) -> None:
    operations = spec["paths"].get(f"/api/v1{path}")
    assert operations is not None, f"{path} is missing"
    assert method.lower() in operations, f"{method} {path} is missing"


def test_every_operation_has_a_summary_and_problem_responses(spec: dict) -> None:  # type: ignore[type-arg]
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            assert "401" in operation["responses"], f"{method.upper()} {path} lacks 401"
            assert "422" not in operation["responses"], f"{method.upper()} {path} documents 422"


async def test_interactive_docs_and_schema_are_served(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "/api/v1/openapi.json" in docs.text
    served = await client.get("/api/v1/openapi.json")
    assert "/api/v1/projects/{projectId}/documents" in served.json()["paths"]


def test_tags_are_declared_in_the_seeds_order(spec: dict) -> None:  # type: ignore[type-arg]
    """Routers are matched busiest first; the document still lists sections in seed order."""
    declared = [tag["name"] for tag in spec["tags"]]
    used = {tag for ops in spec["paths"].values() for op in ops.values() for tag in op["tags"]}
    assert set(declared) == used
    assert declared[:4] == ["tokens", "users", "teams", "settings"]
    assert declared.index("projects") < declared.index("documents") < declared.index("v3 root")


def test_operation_ids_are_tag_and_handler_name(spec: dict) -> None:  # type: ignore[type-arg]
    # Generated clients name their methods after these; routes on the app itself
    # (api/routing.py) must keep them.
    read = spec["paths"]["/api/v1/projects/{projectId}/documents/{documentId}"]["get"]
    assert read["operationId"] == "documents-read_document"
    assert spec["paths"]["/api/v3"]["get"]["operationId"] == "v3 root-read_root"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            tag = operation["tags"][0]
            assert operation["operationId"].startswith(f"{tag}-"), f"{method} {path}"


def test_the_503_answer_is_described_for_both_databases(spec: dict) -> None:  # type: ignore[type-arg]
    operation = spec["paths"]["/api/v1/projects/{projectId}/documents/{documentId}"]["get"]
    described = operation["responses"]["503"]["description"]
    assert "SQLite" in described and "PostgreSQL" in described
    assert "statement timeout" in described


async def test_docs_load_every_asset_from_this_server(client: httpx.AsyncClient) -> None:
    """Swagger UI comes from the installed package: /docs works without internet."""
    for page in ("/docs",):
        html = (await client.get(page)).text
        assets = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', html)
        assert assets, page
        for url in assets:
            assert url.startswith("/docs/assets/"), f"{page} loads {url}"
            served = await client.get(url)
            assert served.status_code == 200 and len(served.content) > 1000, url
        assert "fonts.googleapis" not in html and "cdn." not in html, page


def test_authenticated_operations_declare_the_token_schemes(spec: dict) -> None:  # type: ignore[type-arg]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Token",
        "description": schemes["apiToken"]["description"],
    }
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["apikeyBasic"]["scheme"] == "basic"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            declared = [name for option in operation.get("security", []) for name in option]
            if path == "/health":
                assert declared == [], "the health check needs no token"
            elif path.startswith("/api/v3"):
                assert declared == ["apiToken", "bearer", "apikeyBasic"], f"{method} {path}"
            else:
                assert declared == ["apiToken", "bearer"], f"{method} {path}"
