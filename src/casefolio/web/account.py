"""Sign in and out, set a password from a link, change one's own password, own API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, time

from fastapi import APIRouter, Request, Response

from casefolio.api.ids import PathId
from casefolio.api.proxies import client_address, is_https
from casefolio.db.models import ApiToken
from casefolio.domain import accounts, events, shown_once, tokens, websessions
from casefolio.domain.errors import Invalid, RateLimited, Unauthenticated, WrongPassword
from casefolio.domain.pages import MAX_LIMIT, PageRequest
from casefolio.web import attempts
from casefolio.web.deps import (
    SESSION_COOKIE,
    CsrfRefused,
    WebRoute,
    WebUser,
    WebWriter,
    cookie_secret,
    lifetimes,
    same_origin,
    take_shown_once,
)
from casefolio.web.http import read_form, render, see_other, state_of

router = APIRouter(include_in_schema=False, route_class=WebRoute)


def _safe_next(target: str | None) -> str:
    # Only a path of this site: never an open redirect to another one.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/projects"


def _set_cookie(request: Request, response: Response, secret: str) -> None:
    settings = state_of(request).settings
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(settings.session_max_hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


@router.get("/signin")
async def signin_page(request: Request, next: str = "/projects") -> Response:
    return render(request, "signin.html", next=_safe_next(next), email="", error=None)


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await read_form(request)
    if not same_origin(request):
        raise CsrfRefused
    email, password = form.get("email", "").strip(), form.get("password", "")
    target = _safe_next(form.get("next"))
    state = state_of(request)
    settings = state.settings
    account_key, address_key = accounts.signin_limit_keys(email, client_address(request))
    budgets = [
        (account_key, settings.signin_attempts_per_minute),
        (address_key, settings.signin_address_attempts_per_minute),
    ]
    try:
        charged = await attempts.charge(state.limiter, budgets)
    except RateLimited as exc:
        return attempts.too_many(request, exc, "signin.html", "sign-in", next=target, email=email)
    try:
        # Verified on a read session: a slow hash must not hold SQLite's write lock.
        async with state.db.read() as session:
            user = await accounts.authenticate(session, email=email, password=password)
    except Unauthenticated as exc:
        return render(request, "signin.html", 401, next=target, email=email, error=exc.message)
    await charged.give_back()
    async with state.db.write() as session:
        opened = await websessions.open_session(session, user_id=user.id)
        await websessions.end_expired(session, lifetimes=lifetimes(settings))
    response = see_other(target)
    _set_cookie(request, response, opened.secret)
    return response


@router.post("/signout")
async def signout(request: Request, me: WebWriter) -> Response:
    async with state_of(request).db.write() as session:
        await websessions.end(session, session_id=me.session_id)
    response = see_other("/signin")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/set-password/{secret}")
async def set_password_page(request: Request, secret: str) -> Response:
    async with state_of(request).db.read() as session:
        user = await accounts.link_user(session, secret=secret)
    return render(request, "set_password.html", user=user, error=None)


@router.post("/set-password/{secret}")
async def set_password(request: Request, secret: str) -> Response:
    # No session yet and the secret itself is the credential: a forged post cannot know it.
    form = await read_form(request)
    if not same_origin(request):
        raise CsrfRefused
    password, again = form.get("password", ""), form.get("again", "")
    state = state_of(request)
    try:
        if password != again:
            raise Invalid("The two passwords are not the same.")
        # Hashed before the transaction (it takes a while), for a link that works: a made-up
        # secret costs no hash.
        async with state.db.read() as session:
            await accounts.link_user(session, secret=secret)
        new = await accounts.hashed(password)
        async with state.db.write() as session:
            user = await accounts.redeem_link(session, secret=secret, password=new)
            # Nobody is signed in: the link's secret is the credential, so its user acts
            # (recorded at the commit, below).
            events.current_actor.set(events.Actor("web", user.id, None, client_address(request)))
    except Invalid as exc:
        async with state.db.read() as session:
            user = await accounts.link_user(session, secret=secret)
        return render(request, "set_password.html", 400, user=user, error=exc.message)
    return render(
        request,
        "signin.html",
        next="/projects",
        email="",
        error=None,
        notice="Your password is set. Sign in with it.",
    )


@router.get("/account")
async def account_page(request: Request, me: WebUser, changed: bool = False) -> Response:
    notice = "Your password is changed; every other browser signed in as you is signed out."
    return render(request, "account.html", error=None, notice=notice if changed else None)


@router.post("/account/password")
async def change_password(request: Request, me: WebWriter) -> Response:
    form = await read_form(request)
    state = state_of(request)
    # A wrong current password is a guess at it, as at sign-in: the account's budget.
    budget = accounts.account_limit_key(me.principal.email)
    try:
        charged = await attempts.charge(
            state.limiter, [(budget, state.settings.signin_attempts_per_minute)]
        )
    except RateLimited as exc:
        return attempts.too_many(request, exc, "account.html", "password", notice=None)
    try:
        if form.get("new", "") != form.get("again", ""):
            raise Invalid("The two new passwords are not the same.")
        # Checking and hashing take a while: before the write transaction, not in it.
        async with state.db.read() as session:
            matched = await accounts.check_own(
                session, who=me.principal, current=form.get("current", "")
            )
        new = await accounts.hashed(form.get("new", ""))
        async with state.db.write() as session:
            await accounts.change_own(session, who=me.principal, matched=matched, new=new)
            # Every session ended, this one too; the browser that changed it stays signed in.
            opened = await websessions.open_session(session, user_id=me.principal.user_id)
    except Invalid as exc:
        if not isinstance(exc, WrongPassword):
            await charged.give_back()
        return render(request, "account.html", 400, error=exc.message, notice=None)
    await charged.give_back()
    moved = see_other("/account?changed=1")
    _set_cookie(request, moved, opened.secret)
    return moved


# ---- own API tokens ----------------------------------------------------------------------


async def _token_list(request: Request, me: websessions.SignedIn) -> list[ApiToken]:
    async with state_of(request).db.read() as session:
        page = await tokens.list_page(
            session, who=me.principal, user_id=None, page=PageRequest(limit=MAX_LIMIT)
        )
    # An operator sees everyone's tokens through the API; this page is about one's own.
    return [t for t in page.items if t.user_id == me.principal.user_id]


TOKEN_SHOWN = "api-token"


@router.get("/tokens")
async def tokens_page(request: Request, me: WebUser) -> Response:
    issued = await take_shown_once(request, TOKEN_SHOWN)
    curl = None
    if issued:
        base = str(request.base_url).rstrip("/")
        secret = issued["secret"]
        curl = f'curl -H "X-API-Token: {secret}" {base}/api/v1/projects'
    return render(
        request,
        "tokens.html",
        tokens=await _token_list(request, me),
        issued=issued,
        curl=curl,
        error=None,
    )


def _expiry(raw: str) -> datetime | None:
    if not raw.strip():
        return None
    try:
        day = datetime.strptime(raw.strip(), "%Y-%m-%d").date()
    except ValueError as exc:
        raise Invalid("The expiry must be a date (YYYY-MM-DD).") from exc
    return datetime.combine(day, time(23, 59, 59), UTC)


@router.post("/tokens")
async def create_token(request: Request, me: WebWriter) -> Response:
    """Create a token, then redirect to the list, which shows its secret once (a reload of
    that page neither creates another token nor shows the secret again)."""
    form = await read_form(request)
    state = state_of(request)
    try:
        async with state.db.write() as session:
            issued = await tokens.issue(
                session,
                who=me.principal,
                user_id=me.principal.user_id,
                name=form.get("name", ""),
                expires_at=_expiry(form.get("expires", "")),
            )
            await shown_once.keep(
                session,
                cookie_secret=cookie_secret(request),
                kind=TOKEN_SHOWN,
                value={"name": issued.token.name, "secret": issued.secret},
            )
    except Invalid as exc:
        return render(
            request,
            "tokens.html",
            400,
            tokens=await _token_list(request, me),
            issued=None,
            error=exc.message,
        )
    return see_other("/tokens")


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: PathId, me: WebWriter) -> Response:
    state = state_of(request)
    async with state.db.write() as session:
        await tokens.revoke(session, who=me.principal, token_id=token_id)
    state.credentials.clear()
    return see_other("/tokens")
