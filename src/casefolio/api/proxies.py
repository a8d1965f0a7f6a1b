"""Who sent a request, and how, when reverse proxies stand in between: believed only of the
proxies CASEFOLIO_TRUSTED_PROXIES names (a client could write these headers itself)."""

from __future__ import annotations

import ipaddress

from fastapi import Request


def _trusted(request: Request) -> bool:
    return request.client is not None and _is_proxy(request, request.client.host)


def _is_proxy(request: Request, address: str) -> bool:
    """Whether `address` is one of CASEFOLIO_TRUSTED_PROXIES."""
    networks = request.app.state.casefolio.proxies
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # not an IP address (a Unix socket's peer, a forged header's text)
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack listener's IPv4 peer: ::ffff:10.0.0.5
    return any(ip in network for network in networks)


def is_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS: directly, or through a trusted proxy that
    says so in X-Forwarded-Proto."""
    if request.url.scheme == "https":
        return True
    if _trusted(request):
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return proto == "https"
    return False


def client_address(request: Request) -> str:
    """The browser's address: the peer, or what the trusted proxies say in X-Forwarded-For.

    Each proxy appends the address it was reached from, after whatever the request brought
    (nginx's $proxy_add_x_forwarded_for): the rightmost address that is not a trusted proxy
    is the browser's, and anything left of it is whatever the browser chose to send. A hop
    that is no IP address ends the walk: the peer stands instead.
    """
    peer = request.client.host if request.client else "unknown"
    if not _trusted(request):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        address = _ip(hop)
        if address is None:
            return peer
        if not _is_proxy(request, address):
            return address
    return peer


def _ip(text: str) -> str | None:
    """`text` as an IP address in its usual form, or None: no scope (`%eth0`), which could
    make it any length."""
    try:
        return str(ipaddress.ip_address(text)) if "%" not in text else None
    except ValueError:
        return None
