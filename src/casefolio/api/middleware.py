"""ASGI middleware: HEAD on every GET resource, rate-limit headers on every response, and
the one check of the text a URL carries."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casefolio.api.errors import Problem, render
from casefolio.api.ratelimit import STATE_KEY, Budget
from casefolio.domain import text

HEAD_FLAG = "casefolio.head"


class HeadAsGet:
    """Serve HEAD through the GET route and send only its headers.

    The seed promises HEAD on any resource; routing it through GET keeps one code path, and
    streaming responders read the HEAD_FLAG so they never read a blob just to discard it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        scope = dict(scope, method="GET")
        scope[HEAD_FLAG] = True
        body_sent = False

        async def send_headers_only(message: Message) -> None:
            nonlocal body_sent
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] in ("http.response.body", "http.response.pathsend"):
                if not body_sent:
                    body_sent = True
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await send(message)

        await self.app(scope, receive, send_headers_only)


class RateLimitHeaders:
    """Copy the budget that authentication charged onto the response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Create the state dict here so that copies of the scope further down share it.
        state = scope.setdefault("state", {})

        async def send_with_budget(message: Message) -> None:
            if message["type"] == "http.response.start":
                budget = state.get(STATE_KEY)
                if isinstance(budget, Budget):
                    message = dict(
                        message, headers=[*message.get("headers", []), *budget.headers()]
                    )
            await send(message)

        await self.app(scope, receive, send_with_budget)


class StorableUrl:
    """Refuse a URL whose path or query holds text that cannot be stored (a NUL: `%00`) with
    400 naming the parameter, before any route sees it; JSON bodies are checked where they
    are parsed (api/v1/schemas.py, api/jsonbody.py), by the same rule (domain/text.py).

    Percent-decoding turns invalid UTF-8 into U+FFFD, so a URL cannot carry a surrogate.

    `answer` says the refusal: the APIs' problem document unless told otherwise (the pages
    answer a browser with a page)."""

    def __init__(
        self, app: ASGIApp, answer: Callable[[Request, Problem], Response] = render
    ) -> None:
        self.app = app
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _url_problem(scope)
            if problem is not None:
                await self.answer(Request(scope), problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


#: Percent-decoding would put U+FFFD in place of such bytes, and that is what got stored.
NOT_UTF8 = "its %-escapes are not UTF-8 once decoded; send text as UTF-8 (é is %C3%A9)"


def _decodes(raw: bytes) -> bool:
    """Whether %-escaped bytes are UTF-8 once decoded."""
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _not_utf8(query: bytes) -> str | None:
    """Given a query string, return the name of the first parameter whose name or value is
    not UTF-8 once decoded, or None when all are."""
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if not (_decodes(name) and _decodes(value)):
            return unquote_to_bytes(name).decode("utf-8", "replace")[:40]
    return None


def _url_problem(scope: Scope) -> Problem | None:
    field: str | None = None
    problem: str | None = None
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            problem = text.unstorable(name) or text.unstorable(value)
            if problem is not None:
                field = name if text.unstorable(name) is None else "(query parameter name)"
                break
    if problem is None and b"%" in query:
        field = _not_utf8(query)
        problem = None if field is None else NOT_UTF8
    path: str = scope.get("path", "")
    if problem is None and "\x00" in path:
        field, problem = "path", text.unstorable(path)
    raw_path: bytes = scope.get("raw_path") or b""
    if problem is None and b"%" in raw_path and not _decodes(raw_path):
        field, problem = "path", NOT_UTF8
    if problem is None or field is None:
        return None
    detail = f"Validation failed. {field}: {problem}"
    return Problem.bad_request(detail, "InvalidQuery", [{"field": field, "message": problem}])
