"""DirectRoute: a route whose requests casefolio resolves instead of FastAPI (the fast path's
route half). With fast reads off, `resolve_by_fastapi` gives each back to FastAPI."""

from __future__ import annotations

import copy
import email.message
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, get_type_hints

from fastapi import APIRouter, FastAPI, Request, Response, params
from fastapi._body_limit import (  # private: see resolve_by_fastapi and _body_reader
    get_body_limit_error,
    wrap_app_with_body_limit,
)
from fastapi._compat import field_annotation_is_sequence
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import (  # private: the equivalence tests guard them
    _get_param_aliases,
    _get_param_model,
    _is_json_field,
    _solve_generator,
    _validate_value_with_model_field,
)
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.routing import APIRoute, request_response
from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined as Undefined
from starlette.datastructures import QueryParams
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from casefolio.api.auth import authenticate
from casefolio.api.deps import app_state, get_session

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])


class DirectRoute(APIRoute):
    """A route FastAPI documents and checks as any other, but whose requests it does not
    resolve: its handler does, for the shapes such a route may have.

    Per request FastAPI walks the route's dependency tree, validates each parameter through
    its field machinery, opens an exit stack and records telemetry values; for the document
    read and the document lists that was a large share of their time in-process
    (bench/README.md), for routes that need none of it; and for the uploads and the folder
    create, whose callers write one after another and wait for each. A DirectRoute keeps the
    declared signature, so OpenAPI, `check_authenticated` and each parameter's rules stay
    FastAPI's, and resolves, in FastAPI's order: a JSON body parameter's body read first
    (`_body_reader`), then the dependencies (`_solver`: `authenticate`, once however often it
    is named, so a request without a token is a 401; the app state; the request's session;
    an async function of query parameters alone, such as the page parameters; an async
    function of path parameters and of these), then the path parameters, each validated
    against its own declared annotation, then the query parameters, validated by FastAPI's
    own `request_params_to_args`, then the body by FastAPI's own validation; every invalid
    value of all of them together raises one RequestValidationError, as FastAPI would. Then
    the Request. A route declaring anything else (a header or cookie parameter, a form or
    several body parameters, another kind of dependency) is refused when made. Not
    recorded: FastAPI's per-route telemetry values (the request's span still is).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[..., Awaitable[Response]] = self.dependant.call  # type: ignore[assignment]
        dependant = self.dependant
        if dependant.header_params or dependant.cookie_params:
            raise TypeError(f"{self.path}: a DirectRoute takes no header or cookie parameter")
        body_field = self.body_field
        if dependant.body_params and (
            len(dependant.body_params) != 1
            or self._embed_body_fields
            or body_field is None
            or isinstance(body_field.field_info, params.Form)
        ):
            raise TypeError(f"{self.path}: a DirectRoute's body is one JSON parameter")
        strict = self.strict_content_type
        read_body = _body_reader(
            bool(strict.value if isinstance(strict, DefaultPlaceholder) else strict)
        )
        dependencies = [(sub.name, _solver(sub, self.path)) for sub in dependant.dependencies]
        request_name = dependant.request_param_name
        read_path = _path_reader(dependant)
        query_params = dependant.query_params
        read_query = _query_reader(dependant, self.path)
        resolved = {f.name for f in dependant.path_params} | {f.name for f in query_params}
        resolved |= {f.name for f in dependant.body_params}
        resolved |= {name for name, _ in dependencies if name}
        if request_name is not None:
            resolved.add(request_name)
        if set(inspect.signature(endpoint).parameters) != resolved:
            raise TypeError(f"{self.path}: a DirectRoute's parameters are all resolved by it")

        async def handle(request: Request) -> Response:
            values: dict[str, Any] = {}
            errors: list[Any] = []
            solved: dict[Any, Any] = {}
            # As FastAPI: the body read before any dependency is solved.
            body = Undefined if body_field is None else await read_body(request)
            await _solve_all(dependencies, request, solved, values, errors)
            errors += read_path(request.path_params, values)
            if query_params:
                arguments, problems = read_query(request.query_params)
                errors += problems
                values.update(arguments)
            if body_field is not None:
                value, problems = _validate_value_with_model_field(
                    field=body_field, value=body, values=values, loc=("body",)
                )
                errors += problems
                values[body_field.name] = value
            if errors:
                raise RequestValidationError(errors)
            if request_name is not None:
                values[request_name] = request
            return await endpoint(**values)

        return handle


def _body_reader(strict_content_type: bool) -> Callable[[Request], Awaitable[Any]]:
    """A function reading a request's body as FastAPI's request handler reads a JSON body
    parameter's: JSON when the content type says JSON (or, not strict, says nothing), else
    the bytes, Undefined when empty; the same refusals of what does not parse."""

    async def read(request: Request) -> Any:
        try:
            raw = await request.body()
            if not raw:
                return Undefined
            content_type = request.headers.get("content-type")
            if not content_type:
                return raw if strict_content_type else await request.json()
            message = email.message.Message()
            message["content-type"] = content_type
            if message.get_content_maintype() == "application":
                subtype = message.get_content_subtype()
                if subtype == "json" or subtype.endswith("+json"):
                    return await request.json()
            return raw
        except json.JSONDecodeError as error:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", error.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": error.msg},
                    }
                ],
                body=error.doc,
            ) from error
        except HTTPException:
            raise
        except Exception as error:
            if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (limit := get_body_limit_error(error)):
                raise limit from error
            raise HTTPException(400, "There was an error parsing the body") from error

    return read


#: A dependency that could not be called: its errors are in the request's list.
_FAILED: Any = object()
#: Given the request, the values solved so far (by dependency) and the request's error list,
#: a dependency's value, or _FAILED.
Solver = Callable[[Request, dict[Any, Any], list[Any]], Awaitable[Any]]


def _solver(sub: Dependant, path: str) -> Solver:
    """How a DirectRoute solves one dependency, as FastAPI's `solve_dependencies` does (each
    solved once a request unless it says otherwise; its own dependencies, then its path
    parameters; not called if any of them failed, the errors kept): `authenticate`, the
    app state, the request's session (a generator left when the handler returns, as
    FastAPI's "function" scope), an async function of query parameters alone, or an async
    function of path parameters and of such dependencies."""
    call: Any = sub.call
    key = (call, sub.scope)
    if call is authenticate or call is app_state:

        async def of_request(request: Request, solved: dict[Any, Any], errors: list[Any]) -> Any:
            if key not in solved:
                solved[key] = await call(request)
            return solved[key]

        return of_request
    if call is get_session:
        if sub.scope != "function":
            raise TypeError(f"{path}: a DirectRoute's session is left when the handler returns")

        async def session(request: Request, solved: dict[Any, Any], errors: list[Any]) -> Any:
            if key not in solved:
                stack = request.scope["fastapi_function_astack"]
                solved[key] = await _solve_generator(
                    dependant=sub, stack=stack, sub_values={"request": request}, request=request
                )
            return solved[key]

        return session
    if _of_query_alone(sub):
        read_query = _query_reader(sub, path)

        async def of_query(request: Request, solved: dict[Any, Any], errors: list[Any]) -> Any:
            if sub.use_cache and key in solved:
                return solved[key]
            arguments, problems = read_query(request.query_params)
            if problems:
                errors += problems
                return _FAILED
            return solved.setdefault(key, await call(**arguments))

        return of_query
    if not _of_path_and_dependencies(sub):
        raise TypeError(
            f"{path}: a DirectRoute depends on `authenticate`, the app state, the session, "
            "async functions of query parameters alone, and async functions of path "
            "parameters and of these"
        )
    dependencies = [(d.name, _solver(d, path)) for d in sub.dependencies]
    read_path = _path_reader(sub)

    async def of_path(request: Request, solved: dict[Any, Any], errors: list[Any]) -> Any:
        if sub.use_cache and key in solved:
            return solved[key]
        values: dict[str, Any] = {}
        mine: list[Any] = []
        await _solve_all(dependencies, request, solved, values, mine)
        mine += read_path(request.path_params, values)
        if mine:
            errors += mine
            return _FAILED
        return solved.setdefault(key, await call(**values))

    return of_path


async def _solve_all(
    dependencies: list[tuple[str | None, Solver]],
    request: Request,
    solved: dict[Any, Any],
    values: dict[str, Any],
    errors: list[Any],
) -> None:
    """Solve each dependency in order, its value into `values` under its name (if it has
    one and could be called), its problems into `errors`."""
    for name, solve in dependencies:
        value = await solve(request, solved, errors)
        if name and value is not _FAILED:
            values[name] = value


def _path_reader(dependant: Dependant) -> Callable[[dict[str, Any], dict[str, Any]], list[Any]]:
    """Given a route or dependency, a function that validates its path parameters, each
    against its own declared annotation, into the values given; it returns the errors."""
    hints = get_type_hints(dependant.call, include_extras=True)
    params = [
        (field.name, field.alias, TypeAdapter[Any](hints[field.name]))
        for field in dependant.path_params
    ]

    def read(path_params: dict[str, Any], values: dict[str, Any]) -> list[Any]:
        errors: list[Any] = []
        for name, alias, adapter in params:
            try:
                values[name] = adapter.validate_python(path_params[alias])
            except ValidationError as error:
                errors += [
                    {**problem, "loc": ("path", alias)}
                    for problem in error.errors(include_url=False)
                ]
        return errors

    return read


QueryReader = Callable[[QueryParams], tuple[dict[str, Any], list[Any]]]


def _query_reader(dependant: Dependant, path: str) -> QueryReader:
    """Given a route or dependency, a function of a request's query parameters returning
    the validated values of its query parameters by name and the errors, as FastAPI's
    `request_params_to_args` returns them: the same lookup (the last value of a repeated
    parameter) and FastAPI's own validation of each, without re-deciding per request what
    kind of parameter each is. Only plain parameters: not a sequence, a model or JSON."""
    specs = []
    for field in dependant.query_params:
        aliases = _get_param_aliases(field)
        if (
            len(aliases) != 1
            or _get_param_model(field) is not None
            or _is_json_field(field)
            or field_annotation_is_sequence(field.field_info.annotation)
        ):
            raise TypeError(f"{path}: a DirectRoute's query parameter {field.name} is not plain")
        specs.append((field.name, aliases[0][1], field))

    def read(query: QueryParams) -> tuple[dict[str, Any], list[Any]]:
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for name, alias, field in specs:
            raw = query.get(alias)
            value, problems = _validate_value_with_model_field(
                field=field,
                value=Undefined if raw is None else raw,
                values=values,
                loc=("query", alias),
            )
            if problems:
                errors += problems
            else:
                values[name] = value
        return values, errors

    return read


def _of_query_alone(dependency: Dependant) -> bool:
    """Whether a dependency is an async function of query parameters and nothing else."""
    call = dependency.call
    return (
        inspect.iscoroutinefunction(call)
        and not dependency.dependencies
        and not dependency.path_params
        and _of_no_request_parts(dependency)
    )


def _of_no_request_parts(dependency: Dependant) -> bool:
    """Whether a dependency asks for no header, cookie, body or request object."""
    return (
        not dependency.header_params
        and not dependency.cookie_params
        and not dependency.body_params
        and dependency.request_param_name is None
        and dependency.response_param_name is None
        and dependency.background_tasks_param_name is None
        and dependency.security_scopes_param_name is None
        and dependency.websocket_param_name is None
        and dependency.http_connection_param_name is None
    )


def _of_path_and_dependencies(dependency: Dependant) -> bool:
    """Whether a dependency is an async function of path parameters and of dependencies
    (which `_solver` checks in turn), and nothing else."""
    call = dependency.call
    named = {f.name for f in dependency.path_params}
    named |= {d.name for d in dependency.dependencies if d.name}
    return (
        inspect.iscoroutinefunction(call)
        and not dependency.query_params
        and _of_no_request_parts(dependency)
        and set(inspect.signature(call).parameters) == named
    )


def direct_get(router: APIRouter, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """Register a GET handler as a DirectRoute (`options` as for `router.get`)."""
    return direct_route(router, path, methods=["GET"], **options)


def direct_route(
    router: APIRouter, path: str, *, methods: list[str], **options: Any
) -> Callable[[Endpoint], Endpoint]:
    """Register a handler for `methods` as a DirectRoute (`options` as for
    `router.add_api_route`)."""

    def decorator(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            path, endpoint, methods=methods, route_class_override=DirectRoute, **options
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
