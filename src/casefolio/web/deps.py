"""Who is signed in, the CSRF check, and how a page answers a refusal.

A page is opened only by a web session (the cookie); an API token never opens one, and a
session never authenticates the APIs (api/auth.py reads tokens only).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute

from casefolio.api.errors import Problem, problem_for
from casefolio.api.errors import render as render_problem
from casefolio.api.middleware import HEAD_FLAG
from casefolio.api.proxies import client_address
from casefolio.config import Settings
from casefolio.domain import events, shown_once, websessions
from casefolio.domain.errors import DomainError
from casefolio.domain.principal import Principal
from casefolio.domain.websessions import SignedIn
from casefolio.web.http import SECURITY_HEADERS, read_form, render, state_of

SESSION_COOKIE = "casefolio_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
CSRF_REFUSED = (
    "This request was refused: it did not carry this page's security token (CSRF). "
    "Go back, reload the page and try again."
)


class SignInNeeded(Exception):
    """No valid session: the browser is sent to the sign-in page."""


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token, or from another origin."""


def lifetimes(settings: Settings) -> websessions.Lifetimes:
    return websessions.Lifetimes(
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_max_hours),
    )


async def web_user(request: Request) -> SignedIn:
    """The signed-in user of this request, or SignInNeeded."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise SignInNeeded
    state = state_of(request)
    # On the read model's reader (fastpath/), like the API's hottest reads: every page asks.
    found = await state.reads.read(
        partial(websessions.resolve, secret=secret, lifetimes=lifetimes(state.settings))
    )
    if found is None:
        raise SignInNeeded
    if found.stale:
        async with state.db.write() as session:
            await websessions.touch(session, session_id=found.session_id)
    request.state.web_user = found
    # What this request writes is audited as this person's, through the pages.
    events.current_actor.set(
        events.Actor("web", found.principal.user_id, None, client_address(request))
    )
    return found


def cookie_secret(request: Request) -> str:
    """The session cookie of a request that `web_user` let through."""
    return request.cookies.get(SESSION_COOKIE, "")


async def take_shown_once(request: Request, kind: str) -> dict[str, str] | None:
    """Take what waits to be shown once to this browser (domain/shown_once.py), on a GET.

    A HEAD is served by the GET route (api/middleware.py) but shows nothing, so it must not
    use up what the GET after it (a prefetch's, a link checker's) would show: None."""
    if request.scope.get(HEAD_FLAG):
        return None
    async with state_of(request).db.write() as session:
        return await shown_once.take(session, cookie_secret=cookie_secret(request), kind=kind)


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site (Origin/Referer)."""
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent or sent == "null":
        return sent is None
    try:
        origin = urlsplit(sent)
    except ValueError:  # not a URL ("http://["): no site of ours sent it
        return False
    return origin.netloc == request.headers.get("host", request.url.netloc)


async def web_writer(request: Request, user: Annotated[SignedIn, Depends(web_user)]) -> SignedIn:
    """`web_user` for a state-changing request: it must carry the session's CSRF token (a
    form field, the X-CSRF-Token header htmx and the upload script send, or `?csrf=` for the
    plain upload form, whose body is a file) and come from this site."""
    sent = request.headers.get(CSRF_HEADER) or request.query_params.get(CSRF_FIELD)
    if sent is None:
        sent = (await read_form(request)).get(CSRF_FIELD)
    if not same_origin(request) or not websessions.csrf_matches(user, sent):
        raise CsrfRefused
    return user


WebUser = Annotated[SignedIn, Depends(web_user)]
WebWriter = Annotated[SignedIn, Depends(web_writer)]
#: The fields of the request's urlencoded form (read once: the CSRF check may have read them).
#: Declare it after WebWriter, so that a request without its CSRF token is refused first.
WebForm = Annotated[dict[str, str], Depends(read_form)]


def principal(user: SignedIn) -> Principal:
    return user.principal


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def refusal(request: Request, status: int, title: str, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message, "status": status}, status_code=status)
    return render(request, "error.html", status, title=title, message=message)


class WebRoute(APIRoute):
    """A page route: its refusals are answered as pages (or JSON for the upload script), and
    a request without a session goes to the sign-in page (`answer_failures_as_pages`)."""


def is_page(request: Request) -> bool:
    return isinstance(request.scope.get("route"), WebRoute)


def wants_page(request: Request) -> bool:
    """Whether a failure is answered with a page: on a page route, or for a browser (Accept:
    text/html) anywhere outside the APIs, such as an unknown page address."""
    if is_page(request):
        return True
    accept = request.headers.get("accept", "")
    return not request.url.path.startswith("/api/") and "text/html" in accept


def problem_answer(request: Request, problem: Problem) -> Response:
    """The answer to a problem found before any route (api/middleware.py): a page when
    `wants_page`, else the APIs' problem document."""
    answered = render_problem(request, problem)
    if not wants_page(request):
        return answered
    page = _as_page(request, answered)
    # Answered outside SecurityHeaders, which sits nearer the routes: its headers here.
    for name, value in SECURITY_HEADERS:
        page.headers[name.decode()] = value.decode()
    return page


def _sign_in(request: Request, exc: Exception) -> Response:
    target = "/signin"
    if request.method == "GET":
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?next=" + quote(wanted, safe="")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    if wants_json(request):
        return JSONResponse({"error": "Sign in again.", "status": 401}, 401)
    return RedirectResponse(target, status_code=303)


def _csrf_refused(request: Request, exc: Exception) -> Response:
    return refusal(request, 403, "Refused", CSRF_REFUSED)


def _invalid_address(request: Request, exc: RequestValidationError) -> Response:
    wrong = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or 'the request'}: {e['msg']}"
        for e in exc.errors()
    )
    return refusal(request, 400, "Bad Request", f"This address is not valid: {wrong}.")


def _domain_refusal(request: Request, exc: DomainError) -> Response:
    problem = problem_for(exc)
    response = refusal(request, problem.status, problem.title, exc.message)
    for name, value in (problem.headers or {}).items():
        response.headers[name] = value
    return response


def _as_page(request: Request, answered: Response) -> Response:
    """The APIs' problem document (a concurrent change, a busy or lost database, an
    unexpected error) said as a page."""
    try:
        problem = json.loads(bytes(answered.body))
        title, detail = str(problem["title"]), str(problem["detail"])
    except (ValueError, TypeError, KeyError):
        return answered
    response = refusal(request, answered.status_code, title, detail)
    # A 405's Allow and a 416's Content-Range (RFC 9110 15.5.6, 15.5.17).
    for name in ("Retry-After", "Allow", "Content-Range"):
        if name in answered.headers:
            response.headers[name] = answered.headers[name]
    return response


#: Refusals a page words its own way; every other failure is the APIs' answer, as a page.
_PAGE_ANSWERS: dict[type[Exception], Callable[..., Response]] = {
    RequestValidationError: _invalid_address,
    DomainError: _domain_refusal,
}


def _answering_pages_too(
    api_answer: Callable[..., Response | Awaitable[Response]], kind: type
) -> Callable[[Request, Exception], Awaitable[Response]]:
    page_answer = _PAGE_ANSWERS.get(kind)

    async def answer(request: Request, exc: Exception) -> Response:
        if is_page(request) and page_answer is not None:
            return page_answer(request, exc)
        answered = api_answer(request, exc)
        if inspect.isawaitable(answered):
            answered = await answered
        return _as_page(request, answered) if wants_page(request) else answered

    return answer


def answer_failures_as_pages(app: FastAPI) -> None:
    """Make the app's failure handlers (api/errors.py, registered first) answer a page's
    request with a page.

    As handlers of the app, not a `try` in the route: FastAPI runs them after the request's
    dependencies have ended, so the refused request's session has rolled back what it had
    written before the refusal (and audited a refused deletion under hold) before the page
    answers, exactly as for the APIs."""
    if DomainError not in app.exception_handlers:
        raise RuntimeError("api.errors.install(app) must run before the pages are installed")
    for kind, api_answer in list(app.exception_handlers.items()):
        if isinstance(kind, type):
            app.add_exception_handler(kind, _answering_pages_too(api_answer, kind))
    app.add_exception_handler(SignInNeeded, _sign_in)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
