"""Route helpers for the seed's verb rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

F = TypeVar("F", bound=Callable[..., Any])


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
