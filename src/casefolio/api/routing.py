"""Putting the dialects' routes on the app."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, get_type_hints

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

from casefolio.api.auth import authenticate

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])


def operation_id(route: APIRoute) -> str:
    """The OpenAPI operationId of a route: `<tag>-<handler name>`, e.g. documents-read_document."""
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def dialect_router(prefix: str, tag: str, **options: Any) -> APIRouter:
    """A router for one tag of a dialect, complete for `add_routes`: its routes carry the
    prefix, the tag, casefolio's operationIds and `options` (dependencies, responses, ...)."""
    return APIRouter(prefix=prefix, tags=[tag], generate_unique_id_function=operation_id, **options)


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put a router's routes on the app itself, in order, once each is known to
    authenticate (`check_authenticated`). A route is complete when its router makes it, so
    the router (`dialect_router`) must carry what an include would have added. The app's
    `dependency_overrides` do not reach these routes (casefolio's tests run the real
    dependencies).

    Not `include_router`: since FastAPI 0.137 that keeps the router as a node which every
    request resolves again (it recounts the router's routes and matches twice), a sixth of a
    document read in-process (bench/README.md). Routes on the app itself are
    matched once, as a bare FastAPI app's are.
    """
    check_authenticated(router)
    app.router.routes.extend(router.routes)


def authenticates(dependant: Dependant) -> bool:
    """Whether `authenticate` is among a route's (or dependency's) dependencies, however deep."""
    return any(sub.call is authenticate or authenticates(sub) for sub in dependant.dependencies)


def check_authenticated(router: APIRouter) -> None:
    """Raise unless every route of the router authenticates: one that does not would serve
    anybody, without a token and without a rate limit."""
    for route in router.routes:
        if isinstance(route, APIRoute) and not authenticates(route.dependant):
            raise RuntimeError(f"{sorted(route.methods or ())} {route.path} does not authenticate")


def move_to_front(app: FastAPI, endpoint: Callable[..., Any]) -> None:
    """Try the routes of `endpoint` before all others. Only for a route no earlier one could
    take: the first route whose path and method match a request serves it."""
    mine = [r for r in app.router.routes if getattr(r, "endpoint", None) is endpoint]
    if not mine:
        raise LookupError(f"no route serves {endpoint.__name__}")
    app.router.routes[:] = mine + [r for r in app.router.routes if r not in mine]


class DirectRoute(APIRoute):
    """A route FastAPI documents and checks as any other, but whose requests it does not
    resolve: its handler does, for the one shape such a route may have.

    Per request FastAPI walks the route's dependency tree, validates each parameter through
    its field machinery, opens an exit stack and records telemetry values; for the document
    read that was over a third of its time in-process (bench/README.md), for a route that needs
    none of it. A DirectRoute keeps the declared signature, so OpenAPI, `check_authenticated`
    and each parameter's rules stay FastAPI's, and resolves, in FastAPI's order: the caller
    (`authenticate`, so a request without a token is a 401 before anything else), then the
    path parameters, each validated against its own declared annotation (a bad one raises
    RequestValidationError, as FastAPI would), then the Request. A route declaring anything
    else (a query, header or body parameter, another dependency) is refused when made.
    Not recorded: FastAPI's per-route telemetry values (the request's span still is).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[..., Awaitable[Response]] = self.dependant.call  # type: ignore[assignment]
        dependant = self.dependant
        if dependant.query_params or dependant.header_params or dependant.cookie_params:
            raise TypeError(f"{self.path}: a DirectRoute takes path parameters only")
        others = [sub for sub in dependant.dependencies if sub.call is not authenticate]
        if dependant.body_params or others:
            raise TypeError(f"{self.path}: a DirectRoute depends on `authenticate` alone")
        # Every dependency is `authenticate` (above), named as a parameter or not (a route's
        # `dependencies=[...]`): with any at all, the caller is authenticated, once.
        authenticates = bool(dependant.dependencies)
        callers = [sub.name for sub in dependant.dependencies if sub.name]
        request_name = dependant.request_param_name
        hints = get_type_hints(endpoint, include_extras=True)
        path_params = [
            (field.name, field.alias, TypeAdapter[Any](hints[field.name]))
            for field in dependant.path_params
        ]
        resolved = {name for name, _, _ in path_params} | set(callers)
        if request_name is not None:
            resolved.add(request_name)
        if set(inspect.signature(endpoint).parameters) != resolved:
            raise TypeError(f"{self.path}: a DirectRoute's parameters are all resolved by it")

        async def handle(request: Request) -> Response:
            values: dict[str, Any] = {}
            if authenticates:
                caller = await authenticate(request)
                values.update(dict.fromkeys(callers, caller))
            errors: list[Any] = []
            for name, alias, adapter in path_params:
                try:
                    values[name] = adapter.validate_python(request.path_params[alias])
                except ValidationError as error:
                    errors += [
                        {**problem, "loc": ("path", alias)}
                        for problem in error.errors(include_url=False)
                    ]
            if errors:
                raise RequestValidationError(errors)
            if request_name is not None:
                values[request_name] = request
            return await endpoint(**values)

        return handle


def direct_get(router: APIRouter, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """Register a GET handler as a DirectRoute (`options` as for `router.get`)."""

    def decorator(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            path, endpoint, methods=["GET"], route_class_override=DirectRoute, **options
        )
        return endpoint

    return decorator
