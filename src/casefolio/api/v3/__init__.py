"""The OpenProject API v3 compatible dialect: HAL+JSON documents and attachments."""

from __future__ import annotations

from fastapi import APIRouter

from casefolio.api.v3 import attachments, documents, root
from casefolio.api.v3.hal import HalResponse


def build_router() -> APIRouter:
    """Return the v3 router; mount it at /api/v3."""
    router = APIRouter()
    router.add_api_route(
        "",
        root.read_root,
        methods=["GET"],
        response_class=HalResponse,
        tags=["v3 root"],
        summary="The API root",
    )
    for module in (root, documents, attachments):
        router.include_router(module.router)
    return router
