"""Route helpers for the seed's verb rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from casefolio.api.auth import authenticate
from casefolio.api.routing import dialect_router
from casefolio.api.v1.schemas import PROBLEM_RESPONSES

F = TypeVar("F", bound=Callable[..., Any])
PREFIX = "/api/v1"


def v1_router(tag: str) -> APIRouter:
    """A router for one tag of /api/v1, documenting the problem answers.

    Every route authenticates through its handler's parameters (PrincipalDep, or a
    dependency built on it such as ReadableProject), as `check_authenticated` makes sure.
    Not also as the router's dependency: FastAPI solves a dependency declared twice twice,
    serving the second from its cache, ~8 µs of every request.
    """
    return dialect_router(PREFIX, tag, responses=PROBLEM_RESPONSES)


def authenticates(dependant: Dependant) -> bool:
    """Whether `authenticate` is among a route's (or dependency's) dependencies, however deep."""
    return any(sub.call is authenticate or authenticates(sub) for sub in dependant.dependencies)


def check_authenticated(router: APIRouter) -> None:
    """Raise unless every route of the router authenticates: one that does not would serve
    anybody, without a token and without a rate limit."""
    for route in router.routes:
        if isinstance(route, APIRoute) and not authenticates(route.dependant):
            raise RuntimeError(f"{sorted(route.methods or ())} {route.path} does not authenticate")


def patch_route(router: APIRouter, path: str, **kwargs: Any) -> Callable[[F], F]:
    """Register a PATCH handler, and the same handler for POST, as the seed asks.

    POST is kept out of the OpenAPI document so each operation is described once.
    """

    def decorator(func: F) -> F:
        router.add_api_route(path, func, methods=["PATCH"], **kwargs)
        post_kwargs = {k: v for k, v in kwargs.items() if k != "operation_id"}
        router.add_api_route(
            path,
            func,
            methods=["POST"],
            include_in_schema=False,
            name=f"{func.__name__}_post",
            **post_kwargs,
        )
        return func

    return decorator
