"""What `casefolio init` tells a person to do next, depending on the server it finds."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import httpx

from casefolio.config import Settings


def server_url(settings: Settings) -> str:
    """The address a client on this machine reaches `casefolio serve` at."""
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: loopback reaches it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def command_name() -> str:
    """How the person runs casefolio: `casefolio` when that is on PATH, else the path used."""
    used = Path(sys.argv[0])
    on_path = shutil.which("casefolio")
    if on_path and used.name == "casefolio" and Path(on_path).resolve() == used.resolve():
        return "casefolio"
    return shlex.quote(str(used)) if used.name == "casefolio" else "casefolio"


def next_steps(settings: Settings, secret: str, timeout: float = 2.0) -> str:
    """Given the new token, return the lines that say what to do next: try a running server
    of this installation, or start one first."""
    base = server_url(settings)
    curl = f"curl -fsS -H 'X-API-Token: {secret}' {base}/api/v1/users"
    try:
        status = httpx.get(
            f"{base}/api/v1/users", headers={"X-API-Token": secret}, timeout=timeout
        ).status_code
    except httpx.HTTPError:
        status = None
    if status == 200:
        return f"A server of this installation is running at {base}. Try:\n  {curl}"
    if status is not None:
        return (
            f"Something is running at {base}, but it refused this token ({status}): it is "
            "not a server of this installation. Stop it, or start this one on another port "
            f"with `{command_name()} serve --port N`, and use that port below.\n"
            f"Then, in another terminal:\n  {curl}"
        )
    return (
        f"Next: start the server with `{command_name()} serve` (or `make serve` in the "
        f"casefolio folder). Then, in another terminal:\n  {curl}"
    )
