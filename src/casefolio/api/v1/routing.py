"""Route helpers for the seed's verb rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

from casefolio.api.routing import dialect_router
from casefolio.api.v1.schemas import PROBLEM_RESPONSES

F = TypeVar("F", bound=Callable[..., Any])
PREFIX = "/api/v1"


def v1_router(tag: str) -> APIRouter:
    """A router for one tag of /api/v1, documenting the problem answers.

    Every route authenticates through its handler's parameters (PrincipalDep, or a
    dependency built on it such as ReadableProject), as `add_routes` makes sure.
    Not also as the router's dependency: FastAPI solves a dependency declared twice twice,
    serving the second from its cache, a cost on every request (bench/README.md).
    """
    return dialect_router(PREFIX, tag, responses=PROBLEM_RESPONSES)


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
