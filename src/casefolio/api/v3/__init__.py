"""The OpenProject API v3 compatible dialect: HAL+JSON documents and attachments."""

from __future__ import annotations

from fastapi import FastAPI

from casefolio.api.routing import add_routes
from casefolio.api.v3 import attachments, documents, root

TAGS = ["v3 root", *(module.router.tags[0] for module in (documents, attachments))]


def install(app: FastAPI) -> None:
    """Add the /api/v3 routes to the app, on the app itself (api/routing.py)."""
    for module in (root, documents, attachments):
        add_routes(app, module.router)
