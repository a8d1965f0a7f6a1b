"""One webhook message: its body, its Standard Webhooks signature, one attempt to send it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from casefolio.db.models import Change
from casefolio.outbound import ssrf
from casefolio.outbound.chain import timestamp

SECRET_PREFIX = "whsec_"
EXCERPT_BYTES = 1024


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, at: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (Standard Webhooks 1.0)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{at}.".encode() + body, hashlib.sha256).digest()
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
    return {"type": change.type, "timestamp": timestamp(change.at), "data": data}


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
    client: httpx.AsyncClient,
    *,
    url: str,
    secrets_: list[str],
    msg_id: str,
    body: dict[str, Any],
    allowed: list[ssrf.Network],
    time_limit: float,
) -> Outcome:
    """POST the message once; never follows a redirect (a 3xx is a failure)."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    at = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(at),
        "webhook-signature": " ".join(sign(s, msg_id, at, raw) for s in secrets_),
        "user-agent": "casefolio-webhooks",
    }
    started = time.perf_counter()
    try:
        scheme, host, port = ssrf.check_url(url)
        address = await ssrf.resolve(host, port, allowed)
        # Connect to the address just checked (no second look-up an attacker could answer
        # differently); the Host header and TLS name stay the URL's.
        pinned = httpx.URL(url).copy_with(host=str(address))
        headers["host"] = httpx.URL(url).netloc.decode()
        with anyio.fail_after(time_limit):
            response, head = await _post(
                client,
                pinned,
                raw,
                headers,
                time_limit,
                {"sni_hostname": host} if scheme == "https" else {},
            )
    except ssrf.Refused as exc:
        return Outcome(None, _ms(started), "", str(exc), None)
    except Exception as exc:  # any transport failure or the time limit: retried later
        return Outcome(None, _ms(started), "", f"{type(exc).__name__}: {exc}"[:500], None)
    return Outcome(
        response.status_code,
        _ms(started),
        head[:EXCERPT_BYTES].decode("utf-8", "replace"),
        None,
        _retry_after(response.headers.get("retry-after")),
    )


async def _post(
    client: httpx.AsyncClient,
    url: httpx.URL,
    raw: bytes,
    headers: dict[str, str],
    time_limit: float,
    extensions: dict[str, Any],
) -> tuple[httpx.Response, bytes]:
    async with client.stream(
        "POST",
        url,
        content=raw,
        headers=headers,
        timeout=time_limit,
        extensions=extensions,
    ) as response:
        head = b""
        async for chunk in response.aiter_bytes():
            head += chunk
            if len(head) >= EXCERPT_BYTES:
                break  # the rest of a long answer is not kept
    return response, head


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _retry_after(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP-date: the schedule's own delay applies
