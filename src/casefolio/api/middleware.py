"""ASGI middleware: HEAD on every GET resource, and rate-limit headers on every response."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casefolio.api.ratelimit import STATE_KEY, Budget

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
