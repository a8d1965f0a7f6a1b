"""Who is calling: token extraction (every supported scheme), authentication, budget, API switch."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from casefolio.api.credentials import Verified
from casefolio.api.proxies import client_address
from casefolio.api.ratelimit import STATE_KEY
from casefolio.api.state import AppState
from casefolio.domain import events, system, tokens
from casefolio.domain.errors import Forbidden, RateLimited, Unauthenticated
from casefolio.domain.principal import Principal

MISSING_TOKEN = (
    "No API token was sent. Send it in the X-API-Token header "
    "(or as `Authorization: Bearer <token>`)."
)


def token_from_headers(request: Request) -> str | None:
    """Given a request, return the API token from X-API-Token, Bearer, or Basic `apikey:<token>`."""
    if token := request.headers.get("x-api-token"):
        return token.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return value.strip()
    if scheme == "basic":
        # OpenProject clients send the token as the password of the user "apikey".
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if user == "apikey" and password:
            return password
    return None


def credentials_sent(request: Request) -> bool:
    """Whether the request carries credentials of its own, usable or not: a token in any
    supported place, or any HTTP Basic credentials (OpenProject's BasicAuthFailure answers
    every Basic user name and password that does not authenticate, not only `apikey`'s)."""
    if token_from_headers(request) is not None:
        return True
    scheme, _, _ = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "basic"


async def authenticate(request: Request) -> Principal:
    """Return the caller, having charged their rate-limit budget; raise Unauthenticated/Forbidden.

    Calls without a valid token are charged to the client address, so guessing tokens costs
    budget like any other request.
    """
    state: AppState = request.app.state.casefolio
    secret = token_from_headers(request)
    if secret is None:
        await _charge(request, state, f"ip:{client_address(request)}", None)
        raise Unauthenticated(MISSING_TOKEN)
    secret_hash = tokens.hash_secret(secret)
    now = state.credentials.now()
    verified = state.credentials.recall(secret_hash, now)
    stale = False
    if verified is None:
        try:
            async with state.db.read() as session:
                found = await tokens.authenticate(session, secret=secret, now=now)
                api_enabled = (await system.get(session)).integrations_api_enabled
        except Unauthenticated:
            await _charge(request, state, f"ip:{client_address(request)}", None)
            raise
        stale = found.stale
        verified = Verified(found.principal, api_enabled, found.expires_at)
        state.credentials.remember(secret_hash, verified)
    principal, api_enabled = verified.principal, verified.api_enabled
    # Keyed by the secret's hash, not the row id: installations (and test databases) that
    # share one Redis must never share a budget because their token ids coincide.
    await _charge(request, state, f"token:{secret_hash[:32]}", principal.rate_limit)
    # What this request writes is audited as this token's (domain/events.py).
    events.current_actor.set(
        events.Actor("token", principal.user_id, principal.token_id, client_address(request))
    )
    if not api_enabled and not _may_switch_api_on(request, principal):
        raise Forbidden(system.API_DISABLED_MESSAGE)
    if stale and principal.token_id is not None:
        async with state.db.write() as session:
            await tokens.touch(session, token_id=principal.token_id, at=now)
    return principal


def forget_credentials(request: Request) -> None:
    """Call after revoking tokens or changing settings: this process re-checks at once."""
    state: AppState = request.app.state.casefolio
    state.credentials.clear()


def _may_switch_api_on(request: Request, who: Principal) -> bool:
    # Without this an operator who switched the API off could only switch it on via the CLI.
    return who.is_operator and request.url.path.rstrip("/").endswith("/api/v1/settings")


async def _charge(request: Request, state: AppState, key: str, per_minute: int | None) -> None:
    try:
        budget = await state.limiter.hit(key, per_minute)
    except RateLimited as exc:
        # A refusal still tells the client where its budget stands.
        request.scope.setdefault("state", {})[STATE_KEY] = exc.budget
        raise
    request.scope.setdefault("state", {})[STATE_KEY] = budget
