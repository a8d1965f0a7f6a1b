"""Pages for people, served next to the APIs: the landing page at `/` and the web interface
(sign-in, projects, documents, uploads, search, own API tokens, administration, webhooks and the
audit trail).

Server-rendered Jinja2 templates, enhanced by htmx and a little plain JavaScript, all served
from the package (static/, with htmx's licence): no CDN and no build step. The pages call
the domain exactly as the API routes do; the interactive API docs come from fastapi-offline
(app.py).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from casefolio.web import account, admin, audit, documents, landing, projects, search, webhooks
from casefolio.web.deps import answer_failures_as_pages
from casefolio.web.http import STATIC, SecurityHeaders


def install(app: FastAPI) -> None:
    """Add the pages, their static files and their security headers to the app."""
    for module in (landing, account, projects, documents, search, admin, webhooks, audit):
        app.router.routes.extend(module.router.routes)
    answer_failures_as_pages(app)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(SecurityHeaders)
