"""What every page shares: templates, forms, the client's address and scheme behind trusted
proxies, and the security headers of every page."""

from __future__ import annotations

from datetime import datetime
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casefolio import __version__
from casefolio.api.state import AppState
from casefolio.domain import text
from casefolio.domain.errors import Invalid, TooLarge

STATIC = files("casefolio.web").joinpath("static")
TEMPLATES = files("casefolio.web").joinpath("templates")
MAX_FORM_BYTES = 256 * 1024
HTMX = "vendor/htmx-2.0.11.min.js"

# No inline script or style anywhere: every script and stylesheet is a file of the package.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
# Swagger UI (/docs) brings inline scripts of its own, so not the pages' policy; but it is
# where people paste tokens, so it may not be framed (clickjacking) nor its files sniffed.
DOCS_HEADERS = [
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
]
DOCS = "/docs"
# The APIs answer JSON and files.
_NOT_PAGES = "/api/"

templates = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    # The templates are the package's files: they do not change under a running server, so
    # no stat of each template (and of each one it extends or includes) on every render.
    auto_reload=False,
)
templates.globals["version"] = __version__
templates.globals["htmx"] = HTMX


def time_element(instant: datetime) -> Markup:
    """An instant (UTC) as `<time>`: machine-readable to the microsecond, shown to the minute
    and saying its zone (the list pages show one per row: one filter call, not a method call
    and an escape each)."""
    iso = instant.isoformat()
    return Markup(f'<time datetime="{iso}">{iso[:10]} {iso[11:16]} UTC</time>')


_SIZE_UNITS = [(1000 ** (i + 2), prefix) for i, prefix in enumerate("kMGTPEZY")]


def file_size(size: int) -> str:
    """Jinja's `filesizeformat` (decimal units: "1 Byte", "12 Bytes", "4.1 kB"), without its
    per-call loop of powers."""
    value = float(size)  # as Jinja's, to the last digit
    if value == 1:
        return "1 Byte"
    if value < 1000:
        return f"{int(value)} Bytes"
    unit, prefix = next(((u, p) for u, p in _SIZE_UNITS if value < u), _SIZE_UNITS[-1])
    return f"{1000 * value / unit:.1f} {prefix}B"


templates.filters["time_element"] = time_element
templates.filters["file_size"] = file_size


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.casefolio
    return state


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("request", request)
    context.setdefault("me", getattr(request.state, "web_user", None))
    return html_page(templates.get_template(template).render(**context), status_code)


def html_page(html: str, status_code: int = 200) -> HTMLResponse:
    """An HTML answer, never cached (pages show what a session may see)."""
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def fragment(template: str, **context: Any) -> Markup:
    """A template rendered from `context` alone (no request, no session): a part of a page
    that is the same for every request with the same data."""
    return Markup(templates.get_template(template).render(**context))


def see_other(url: str) -> RedirectResponse:
    """After a form's POST, send the browser to `url` with a GET (Post/Redirect/Get): a
    reload then shows the page again instead of sending the form twice."""
    return RedirectResponse(url, status_code=303)


async def read_form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form (the last value of each), read once per request."""
    cached: dict[str, str] | None = getattr(request.state, "web_form", None)
    if cached is not None:
        return cached
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form: dict[str, str] = {}
    if content_type == "application/x-www-form-urlencoded":
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise TooLarge(f"A form may send at most {MAX_FORM_BYTES} bytes.")
        try:
            # Strict for the %-escapes too: by default they decode with U+FFFD in place of
            # bytes that are not UTF-8, which would then be stored.
            form = dict(parse_qsl(body.decode(), keep_blank_values=True, errors="strict"))
        except UnicodeDecodeError as exc:
            raise Invalid("The form was not sent as UTF-8.") from exc
        # The rule the APIs apply to JSON (domain/text.py): a NUL is refused on both databases.
        for name, value in form.items():
            if (problem := text.unstorable(name + value)) is not None:
                raise Invalid(f"The form's {name!r} {problem}.")
    request.state.web_form = form
    return form


class SecurityHeaders:
    """Add the security headers to every page (an HTML response) and static file, and
    DOCS_HEADERS to everything under /docs; nothing to the APIs' answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(_NOT_PAGES):
            await self.app(scope, receive, send)
            return

        static = path.startswith("/static/")
        docs = path == DOCS or path.startswith(DOCS + "/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if docs:
                    message = dict(message, headers=[*headers, *DOCS_HEADERS])
                elif static or content_type.startswith(b"text/html"):
                    # A downloaded HTML file brings its own, stricter ones (a sandbox): not
                    # sent twice.
                    present = {k.lower() for k, _ in headers}
                    added = [(k, v) for k, v in SECURITY_HEADERS if k.lower() not in present]
                    message = dict(message, headers=[*headers, *added])
            await send(message)

        await self.app(scope, receive, send_with_headers)
