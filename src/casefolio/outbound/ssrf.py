"""Where a webhook may point: not into this machine or its private networks, unless allowed.

Checked when a webhook is created or changed, and again at each delivery (DNS can change in
between); a delivery then connects to the very address that was checked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

import anyio

from casefolio.domain.errors import Invalid
from casefolio.outbound import http1

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


#: What urlsplit removes or a request line cannot carry, anywhere in a URL.
_BLANK_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")


class Refused(Exception):
    """The URL is not one casefolio will send to; the message says why."""


def check_url(url: str) -> tuple[str, str, int]:
    """Given a webhook URL, return (scheme, host, port) or raise Invalid."""
    if _BLANK_OR_CONTROL.search(url):
        # urlsplit silently drops tabs and line breaks: checked first, so that the URL stored
        # is the URL checked and delivered to.
        raise Invalid(
            "A webhook URL may not hold spaces, tabs, line breaks or other control "
            "characters; percent-encode them (a space as %20).",
            [{"field": "url", "message": "control character"}],
        )
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # a "[" or "]" in the host that is not a bracketed IPv6 address
        raise Invalid(
            "The webhook URL's host is not valid: square brackets may only enclose an IPv6 "
            "address.",
            [{"field": "url", "message": "host"}],
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(
            "A webhook URL must be an absolute http:// or https:// URL.",
            [{"field": "url", "message": "not an http(s) URL"}],
        )
    if not hostname:  # "http://:80/", "http://[]/"
        raise Invalid(
            "The webhook URL's host is not valid: it is empty.",
            [{"field": "url", "message": "host"}],
        )
    if "@" in parts.netloc:  # even empty ones ("http://@host/"): the Host header would carry it
        raise Invalid(
            "A webhook URL must not carry credentials.", [{"field": "url", "message": "userinfo"}]
        )
    if not hostname.isascii():
        raise Invalid(
            f"The host {hostname} is not written in ASCII: give an internationalized domain "
            f"name in its xn-- form ({_ascii_form(hostname)}).",
            [{"field": "url", "message": "host"}],
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise Invalid("The webhook URL's port is not valid.") from exc
    if port == 0:
        raise Invalid("The webhook URL's port is not valid: it must be between 1 and 65535.")
    port = port or (443 if parts.scheme == "https" else 80)
    if not http1.REQUEST_TARGET.fullmatch("/" + parts.path + parts.query + parts.fragment):
        # An HTTP request line carries the target as it is: the delivery client's own rule
        # (no spaces, controls or non-ASCII), checked here so that the URL is refused now.
        # The fragment is never sent, but it is kept with the URL: the same rule, as the
        # OpenAPI pattern states.
        raise Invalid(
            "The webhook URL's path, query and fragment may hold only visible ASCII characters; "
            "percent-encode any other (a space as %20).",
            [{"field": "url", "message": "path"}],
        )
    return parts.scheme, hostname, port


def _ascii_form(hostname: str) -> str:
    try:
        return hostname.encode("idna").decode("ascii")
    except UnicodeError:
        return "xn--…"


def _forbidden(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


async def resolve(host: str, port: int, allowed: Sequence[Network]) -> Address:
    """Given a host, return the address to connect to, or raise Refused."""
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:  # UnicodeError: not a name IDNA can encode
            raise Refused(f"The host {host} cannot be resolved.") from exc
        found = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not found:
        raise Refused(f"The host {host} has no address.")
    for address in found:
        if _forbidden(address) and not any(address in network for network in allowed):
            raise Refused(
                f"The host {host} resolves to {address}, a loopback, private, link-local or "
                "multicast address; an operator can allow its network with "
                "CASEFOLIO_WEBHOOK_ALLOWED_NETWORKS."
            )
    return found[0]
