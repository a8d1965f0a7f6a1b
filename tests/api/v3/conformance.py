"""Checks a /api/v3 response against OpenProject's schemas (vendored in schemas/, see
schemas/SOURCE.md): the resource itself and everything it embeds, each by its `_type`.

The test clients install `v3_response_hook`, so every /api/v3 response the suite receives
through them is validated, errors included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import httpx
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "schemas"
HAL_JSON = "application/hal+json; charset=utf-8"

Validate = Callable[[str, Any], None]

# Which schemas a resource conforms to, by its `_type`. An Attachment must satisfy the current
# attachment_model.yml (`status`) and the older one (`title`) alike.
_SCHEMAS_BY_TYPE = {
    "Error": ["error.json"],
    "Document": ["document.json"],
    "Attachment": ["attachment.json", "attachment_legacy.json"],
    "User": ["user.json"],
    "Project": ["project.json"],
    "Root": ["root.json"],
}
# A Collection's schema, by its self link.
_COLLECTIONS = [
    (re.compile(r"/api/v3/documents/\d+/attachments"), "attachments_collection.json"),
    (re.compile(r"/api/v3/documents(\?.*)?"), "documents_collection.json"),
    (re.compile(r"/api/v3/projects(\?.*)?"), "collection.json"),
]


@cache
def registry() -> Registry[Any]:
    resources = [
        (p.name, Resource.from_contents(json.loads(p.read_text()))) for p in SCHEMAS.glob("*.json")
    ]
    return Registry().with_resources(resources)


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / schema_name).read_text())
    return Draft202012Validator(schema, registry=registry(), format_checker=FormatChecker())


def validate(schema_name: str, payload: Any) -> None:
    """Raise ValidationError unless the payload conforms to the named schema."""
    _validator(schema_name).validate(payload)


def _schemas_for(resource: dict[str, Any]) -> list[str]:
    kind = resource.get("_type")
    if kind == "Collection":
        href = resource.get("_links", {}).get("self", {}).get("href", "")
        for pattern, schema in _COLLECTIONS:
            if pattern.fullmatch(href):
                return [schema]
        raise AssertionError(f"no schema for the collection {href!r}")
    if kind not in _SCHEMAS_BY_TYPE:
        raise AssertionError(f"no schema for _type {kind!r}")
    return _SCHEMAS_BY_TYPE[kind]


def _resources(payload: Any) -> Iterator[dict[str, Any]]:
    """Every HAL resource in a payload: the payload itself and all it embeds, at any depth
    (a collection's elements, a document's attachments, an attachment's container)."""
    if isinstance(payload, list):
        for item in payload:
            yield from _resources(item)
    elif isinstance(payload, dict):
        if "_type" in payload:
            yield payload
            yield from _resources(payload.get("_embedded"))
        else:  # an `_embedded` object: its values are resources or lists of them
            for value in payload.values():
                yield from _resources(value)


class ReadResponse(Protocol):
    """What the check reads: an httpx or a requests response whose body has been read."""

    @property
    def status_code(self) -> int: ...
    @property
    def content(self) -> bytes: ...
    @property
    def headers(self) -> Any: ...
    def json(self) -> Any: ...


def check_v3_response(method: str, path: str, response: ReadResponse) -> bool:
    """Validate one /api/v3 response (already read); return whether it had a JSON body.
    Errors must be OpenProject Error objects; a bodiless answer (204, HEAD, 304) or a
    download passes."""
    content_type = response.headers.get("content-type", "")
    if method == "HEAD" or not response.content:
        return False
    if "json" not in content_type:
        assert response.status_code < 400, (
            f"{method} {path} answered {response.status_code} without a JSON error body"
        )
        return False
    assert content_type == HAL_JSON, f"{method} {path}: Content-Type {content_type!r}"
    payload = response.json()
    if response.status_code >= 400:
        assert payload.get("_type") == "Error", f"{method} {path}: {payload!r}"
    for resource in _resources(payload):
        for schema in _schemas_for(resource):
            try:
                validate(schema, resource)
            except Exception as exc:
                raise AssertionError(
                    f"{method} {path} → {response.status_code}: {resource.get('_type')} "
                    f"breaks {schema}: {exc}"
                ) from exc
    return True


def v3_response_hook(
    checked: list[tuple[str, str, int]] | None = None,
) -> Callable[[httpx.Response], Awaitable[None]]:
    """An httpx response hook that validates each /api/v3 response; `checked` collects
    (method, path, status) of those with a JSON body."""

    async def conforms(response: httpx.Response) -> None:
        request = response.request
        path = request.url.path
        if not path.startswith("/api/v3"):
            return
        await response.aread()
        if check_v3_response(request.method, path, response) and checked is not None:
            checked.append((request.method, path, response.status_code))

    return conforms


class ConformingTransport(httpx.HTTPTransport):
    """For clients of a real server that take an httpx transport (openproject-cli): checks
    each /api/v3 response with a JSON or error body as it arrives; downloads pass untouched.
    `checked` lists (method, path, status) of what was checked."""

    def __init__(self) -> None:
        super().__init__()
        self.checked: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        path = request.url.path
        content_type = response.headers.get("content-type", "")
        if not path.startswith("/api/v3") or request.method == "HEAD":
            return response
        if "json" not in content_type and response.status_code < 400:
            return response
        content = response.read()
        response.close()
        if check_v3_response(request.method, path, response):
            self.checked.append((request.method, path, response.status_code))
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )
