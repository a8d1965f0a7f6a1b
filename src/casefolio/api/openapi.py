"""The OpenAPI document as casefolio behaves: 400 (never 422) and problem+json errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from casefolio.api.routing import authenticates

PROBLEM_JSON = "application/problem+json"
# How a token may be sent (api/auth.py reads all three); /docs offers each under Authorize.
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "apiToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Token",
        "description": "An API token (from `casefolio init` or `casefolio tokens create`).",
    },
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The same token as `Authorization: Bearer <token>`.",
    },
    "apikeyBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "OpenProject's way, for /api/v3: user name `apikey`, the token as password.",
    },
}


def install(app: FastAPI) -> None:
    """Replace the app's schema builder with one that describes our real error responses."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            _describe_errors(schema)
            _declare_security(schema, app.routes)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _describe_errors(schema: dict[str, Any]) -> None:
    # FastAPI documents its own 422 validation response; casefolio answers those with 400.
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            if not path.startswith("/api/v1"):
                continue  # /api/v3 errors are OpenProject's hal+json objects
            for status, response in responses.items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)


def _declare_security(schema: dict[str, Any], routes: list[BaseRoute]) -> None:
    """Declare the token schemes, and on each operation that authenticates, which it takes:
    any one of them (OpenAPI's list of alternatives); Basic only on /api/v3."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    paths = schema.get("paths", {})
    for route in routes:
        if not (isinstance(route, APIRoute) and route.include_in_schema):
            continue
        if not authenticates(route.dependant):
            continue
        schemes = ["apiToken", "bearer"]
        if route.path_format.startswith("/api/v3"):
            schemes.append("apikeyBasic")
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is not None:
                operation["security"] = [{name: []} for name in schemes]
