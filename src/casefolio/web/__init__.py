"""Pages for people, served next to the APIs: for now the landing page at `/`.

The web interface grows here (DESIGN.md's `web/`); the interactive API docs come from
fastapi-offline, which serves Swagger UI from the installed package (app.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from casefolio.web import landing


def install(app: FastAPI) -> None:
    """Add the pages to the app."""
    app.router.routes.extend(landing.router.routes)
