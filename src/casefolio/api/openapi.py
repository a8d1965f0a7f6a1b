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
            _integral_bounds(schema)
            _describe_errors(schema)
            _declare_security(schema, app.routes)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _integral_bounds(node: Any) -> None:
    # FastAPI's OpenAPI models hold some integer bounds as floats (9.223372036854776e18 for
    # the largest id), which no longer equal the bound and refuse a valid id: write them
    # as integers.
    from casefolio.db.models import MAX_ID

    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = MAX_ID if value >= MAX_ID else int(value)
            else:
                _integral_bounds(value)
    elif isinstance(node, list):
        for item in node:
            _integral_bounds(item)


_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})


def _describe_errors(schema: dict[str, Any]) -> None:
    # FastAPI documents its own 422 validation response; casefolio answers those with 400.
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.get("422", {}).get("description") == "Validation Error":
                responses.pop("422")  # FastAPI's, not v3's PropertyConstraintViolation
            # /api/v3 errors are OpenProject's error objects, sent as hal+json.
            media = PROBLEM_JSON if path.startswith("/api/v1") else "application/hal+json"
            for status, response in responses.items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[media] = content.pop("application/json")
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
