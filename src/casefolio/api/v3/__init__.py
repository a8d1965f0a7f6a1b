"""The OpenProject API v3 compatible dialect: HAL+JSON documents and attachments."""

from __future__ import annotations

from fastapi import FastAPI

from casefolio.api.v3 import attachments, documents, root
from casefolio.api.v3.hal import HalResponse

TAGS = ["v3 root", *(module.router.tags[0] for module in (documents, attachments))]


def install(app: FastAPI) -> None:
    """Add the /api/v3 routes to the app, each module's router one level deep (see v1)."""
    app.add_api_route(
        "/api/v3",
        root.read_root,
        methods=["GET"],
        response_class=HalResponse,
        tags=["v3 root"],
        summary="The API root",
    )
    for module in (root, documents, attachments):
        app.include_router(module.router, prefix="/api/v3")
