"""A secret shown once after a redirect: a page that creates a secret (an API token, a
webhook's signing secret) answers with a redirect, and the page it leads to shows the
secret, once. Reloading that page neither posts again nor shows the secret again, and the
secret never travels in a URL.

The secret waits on the browser's session row, sealed (AES-GCM) with a key derived from the
session cookie, which the database does not hold (only its SHA-256): a reader of the
database cannot open it. The first read for the same kind clears it; a later read finds
nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import WebSession
from casefolio.domain.websessions import session_id_of

_CONTEXT = b"casefolio shown-once v1\x00"


def _key(cookie_secret: str) -> bytes:
    return hashlib.sha256(_CONTEXT + cookie_secret.encode()).digest()


async def keep(
    session: AsyncSession, *, cookie_secret: str, kind: str, value: dict[str, str]
) -> None:
    """Keep `value` for the next read of `kind` by this browser (replacing any unread one)."""
    nonce = secrets.token_bytes(12)
    plain = json.dumps({"kind": kind, "value": value}).encode()
    sealed = nonce + AESGCM(_key(cookie_secret)).encrypt(nonce, plain, _CONTEXT)
    await session.execute(
        update(WebSession)
        .where(WebSession.id == session_id_of(cookie_secret))
        .values(shown_once=base64.b64encode(sealed).decode())
    )


async def take(session: AsyncSession, *, cookie_secret: str, kind: str) -> dict[str, str] | None:
    """Given a browser's cookie, return what waits for `kind` and clear it; None when nothing
    (or something of another kind) waits, or another request took it first."""
    session_id = session_id_of(cookie_secret)
    stored = await session.scalar(select(WebSession.shown_once).where(WebSession.id == session_id))
    if stored is None:
        return None
    try:
        sealed = base64.b64decode(stored)
        plain = AESGCM(_key(cookie_secret)).decrypt(sealed[:12], sealed[12:], _CONTEXT)
        found = json.loads(plain)
    except (ValueError, InvalidTag):
        return None
    if found.get("kind") != kind:
        return None
    # Compare and clear: of two reads at once, one gets it.
    cleared = await session.execute(
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.shown_once == stored)
        .values(shown_once=None)
    )
    if getattr(cleared, "rowcount", 0) != 1:
        return None
    value: dict[str, str] = found["value"]
    return value
