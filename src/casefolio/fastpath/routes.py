"""DirectRoute: a route whose requests casefolio resolves instead of FastAPI (the fast path's
route half). With fast reads off, `resolve_by_fastapi` gives each back to FastAPI."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, get_type_hints

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi._body_limit import wrap_app_with_body_limit  # private: see resolve_by_fastapi
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, request_response
from pydantic import TypeAdapter, ValidationError

from casefolio.api.auth import authenticate

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])


class DirectRoute(APIRoute):
    """A route FastAPI documents and checks as any other, but whose requests it does not
    resolve: its handler does, for the one shape such a route may have.

    Per request FastAPI walks the route's dependency tree, validates each parameter through
    its field machinery, opens an exit stack and records telemetry values; for the document
    read that was a large share of its time in-process (bench/README.md), for a route that
    needs none of it. A DirectRoute keeps the declared signature, so OpenAPI, `check_authenticated`
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


def resolve_by_fastapi(app: FastAPI) -> None:
    """Serve the app's DirectRoutes as ordinary APIRoutes: FastAPI resolves their requests
    (fast reads off). The routes are shared by every app made in the process, so each is
    replaced by a copy, never changed. The copy's ASGI app is built as APIRoute.__init__
    builds it, from FastAPI internals (request_response, wrap_app_with_body_limit): on a
    FastAPI upgrade, tests/fastpath/test_fast_path.py says whether it still holds."""
    app.router.routes[:] = [
        _by_fastapi(route) if isinstance(route, DirectRoute) else route
        for route in app.router.routes
    ]


def _by_fastapi(route: DirectRoute) -> APIRoute:
    plain = copy.copy(route)
    plain.app = wrap_app_with_body_limit(
        request_response(APIRoute.get_route_handler(plain)), plain.max_body_size
    )
    return plain
