"""One webhook message: its body, its Standard Webhooks signature, one attempt to send it."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from casefolio.db.models import Change
from casefolio.db.types import rfc3339
from casefolio.outbound import http1, ssrf

SECRET_PREFIX = "whsec_"
EXCERPT_BYTES = 1024


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@functools.lru_cache(maxsize=256)
def _key(secret: str) -> bytes:
    """A secret's HMAC key, decoded once per secret rather than once per delivery."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, at: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (Standard Webhooks 1.0)."""
    mac = hmac.new(_key(secret), f"{msg_id}.{at}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _id(value: int | None) -> str | None:
    return None if value is None else str(value)


def payload(change: Change) -> dict[str, Any]:
    """A thin body: ids and links, never content; the receiver fetches with its own token."""
    data: dict[str, Any] = {
        "seq": change.seq,
        "projectId": _id(change.project_id),
        "documentId": _id(change.document_id),
        "versionId": _id(change.version_id),
        "folderId": _id(change.folder_id),
    }
    if change.type.startswith("project.access_"):
        data["userId"] = _id(change.user_id)
    elif change.subject_id is not None:
        data["id"] = _id(change.subject_id)
    data = {k: v for k, v in data.items() if v is not None}
    links: dict[str, str] = {}
    if change.project_id is not None:
        links["project"] = f"/api/v1/projects/{change.project_id}"
        if change.document_id is not None and change.type != "document.deleted":
            links["document"] = f"{links['project']}/documents/{change.document_id}"
    if links:
        data["links"] = links
    return {"type": change.type, "timestamp": rfc3339(change.at), "data": data}


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: int
    excerpt: str
    error: str | None
    retry_after: float | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def attempt(
    client: http1.Client,
    *,
    url: str,
    secrets_: list[str],
    msg_id: str,
    body: dict[str, Any],
    allowed: list[ssrf.Network],
    time_limit: float,
) -> Outcome:
    """POST the message once; never follows a redirect (a 3xx is a failure). Whatever goes
    wrong is the attempt's outcome, never an exception: one delivery's failure (a secret
    that cannot be read, a name server that does not answer) ends no other's send."""
    started = time.perf_counter()
    try:
        raw = json.dumps(body, separators=(",", ":")).encode()
        at = int(time.time())
        headers = [
            ("content-type", "application/json"),
            ("webhook-id", msg_id),
            ("webhook-timestamp", str(at)),
            ("webhook-signature", " ".join(sign(s, msg_id, at, raw) for s in secrets_)),
            ("user-agent", "casefolio-webhooks"),
        ]
        scheme, host, port = ssrf.check_url(url)
        parts = urlsplit(url)
        # The look-up counts in the time limit: a name server that does not answer would
        # hold the delivery past its lease. Then connect to the address just checked (no
        # second look-up an attacker could answer differently); the Host header and TLS
        # name stay the URL's. The client runs on asyncio streams, so asyncio's own timeout
        # bounds it (anyio's costs more per call).
        async with asyncio.timeout(time_limit):
            address = await ssrf.resolve(host, port, allowed)
            answer = await client.post(
                scheme=scheme,
                address=str(address),
                port=port,
                host_header=parts.netloc,
                server_name=host,
                target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                headers=headers,
                body=raw,
                keep=EXCERPT_BYTES,
            )
    except ssrf.Refused as exc:
        return Outcome(None, _ms(started), "", str(exc), None)
    except Exception as exc:  # any transport failure or the time limit: retried later
        return Outcome(None, _ms(started), "", f"{type(exc).__name__}: {exc}"[:500], None)
    return Outcome(
        answer.status_code,
        _ms(started),
        answer.head.decode("utf-8", "replace"),
        None,
        _retry_after(answer.headers.get("retry-after")),
    )


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _retry_after(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None  # an HTTP-date: the schedule's own delay applies
    # "nan" says nothing; "inf" or "1e400" are as long as results.py lets any wait be.
    return None if math.isnan(seconds) else max(0.0, seconds)
