"""Putting the dialects' routes on the app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from casefolio.api.auth import authenticate


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
    request resolves again (it recounts the router's routes and matches twice), a measurable
    share of a document read (bench/README.md). Routes on the app itself are matched once,
    as a bare FastAPI app's are.
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
