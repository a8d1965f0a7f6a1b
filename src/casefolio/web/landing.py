"""`GET /`: what this server is, its version, and where the API and its docs are."""

from __future__ import annotations

from html import escape
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from casefolio import __version__
from casefolio.api.health import HEALTH_PATH

router = APIRouter(include_in_schema=False)

# Read and filled in once: the page only changes with the installed version.
_PAGE = (
    files("casefolio.web")
    .joinpath("templates/landing.html")
    .read_text(encoding="utf-8")
    .replace("{version}", escape(__version__))
    .replace("{health}", HEALTH_PATH)
)


@router.get("/", response_class=HTMLResponse)
async def landing_page() -> HTMLResponse:
    return HTMLResponse(_PAGE)
