"""`casefolio serve` and `casefolio migrate`."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from typing import Annotated, Any

import typer
from sqlalchemy.engine import make_url

from casefolio import logs
from casefolio.cli._common import console, load_installation, one_line_errors, upgrade
from casefolio.config import Settings
from casefolio.db.migrate import current_revision, revisions_between, serving


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(migrate)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [CASEFOLIO_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind [CASEFOLIO_PORT].")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes [CASEFOLIO_WORKERS].", min=1)
    ] = None,
    server: Annotated[
        str | None, typer.Option(help="uvicorn or granian [CASEFOLIO_SERVER].")
    ] = None,
    migrate: Annotated[bool, typer.Option(help="Apply pending database migrations first.")] = True,
) -> None:
    """Run the HTTP server (both API dialects) on the configured database and blob store."""
    # Options become environment so that every worker process builds the same Settings.
    for key, value in (("HOST", host), ("PORT", port), ("WORKERS", workers), ("SERVER", server)):
        if value is not None:
            os.environ[f"CASEFOLIO_{key}"] = str(value)
    found = load_installation(create=True)
    settings = found.settings
    # Workers started from another folder, or by granian, find this same installation.
    os.environ["CASEFOLIO_DATA_DIR"] = str(settings.data_dir.absolute())
    say(f"installation in {settings.data_dir.absolute()} ({found.found_by})")
    if not settings.is_sqlite:
        say(f"database {make_url(settings.database_url).render_as_string(hide_password=True)}")
    if migrate and settings.migrate_on_start:
        say("applying pending database migrations")
        upgrade(settings)
    with contextlib.ExitStack() as held:
        # Held until the server stops: a migration by another command is refused meanwhile.
        with one_line_errors():
            held.enter_context(serving(settings))
        _run(settings)


def _run(settings: Settings) -> None:
    base = f"http://{settings.host}:{settings.port}"
    say(
        f"listening on {base} ({settings.server}, {settings.workers} worker(s)); "
        f"API docs at {base}/docs; Ctrl+C stops it"
    )
    if settings.server == "granian":
        from granian import Granian
        from granian.constants import Interfaces

        Granian(
            "casefolio.app:app_from_env",
            address=settings.host,
            port=settings.port,
            workers=settings.workers,
            interface=Interfaces.ASGI,
            factory=True,
            log_level=settings.log_level,  # type: ignore[arg-type]
            log_dictconfig=logs.granian_log_config(settings.log_level),
        ).serve()
        return
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    options: dict[str, Any] = dict(
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        # The access log hides credential-like query values; casefolio's loggers print too.
        log_config=logs.uvicorn_log_config(settings.log_level),
        # httptools, answering a request it cannot parse with a problem document.
        http="casefolio.cli.http_protocol:ProblemHttpToolsProtocol",
        # asyncio's own loop, not uvloop: under uvloop some keep-alive connections went
        # unread for seconds while others were served (pages under 32 connections: p99 ten
        # times the median; bench/README.md), asyncio's serves them in turn.
        loop="asyncio",
        proxy_headers=False,
        # Importing the app takes seconds on a loaded 2-core machine; uvicorn's default 5 s
        # health check would kill and restart workers that are merely still starting.
        timeout_worker_healthcheck=60,
    )
    if settings.workers == 1 or not _REUSE_PORT:
        uvicorn.run("casefolio.app:app_from_env", **options)
        return
    config = uvicorn.Config("casefolio.app:app_from_env", **options)
    with _PortReservation(settings.host, settings.port) as reservation:
        Multiprocess(config, sockets=[reservation]).run()


# Linux spreads connections over the listening sockets of one port; elsewhere SO_REUSEPORT
# means something else (BSD: the last socket bound takes them all).
_REUSE_PORT = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def _reusable_socket(family: int, host: str, port: int) -> socket.socket:
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it an answer's body waited for the client's delayed ACK of its headers.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class _PortReservation(socket.socket):
    """The port for uvicorn's workers, each of which listens on a socket of its own.

    Sharing one listening socket, the worker that wakes first accepts every connection
    waiting: with keep-alive clients one worker can end up serving them all while the others
    idle (measured: 16 upload connections, 2 workers, one did all the work). With a socket
    per worker (SO_REUSEPORT) the kernel spreads new connections evenly over them.

    This socket is bound but never listens, so the kernel gives it no connection; it holds
    the port and fails early if the port is taken. Handing it to a new worker (uvicorn's
    workers are spawned, so it is pickled) opens a fresh socket on the same address there;
    when a worker exits, its socket closes and leaves the group.
    """

    def __init__(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        held = _reusable_socket(family, host, port)
        super().__init__(family, socket.SOCK_STREAM, fileno=held.detach())

    def __reduce__(self) -> tuple[Any, ...]:
        host, port = self.getsockname()[:2]
        return (_reusable_socket, (self.family, host, port))


def say(message: str) -> None:
    console.print(f"casefolio: {message}", soft_wrap=True, highlight=False, markup=False)


def migrate() -> None:
    """Apply pending database migrations and exit."""
    settings = load_installation(create=True).settings
    with one_line_errors():
        before = current_revision(settings)
    upgrade(settings)
    with one_line_errors():
        after = current_revision(settings)
    applied = revisions_between(settings, before, after)
    if applied:
        console.print(
            f"Applied {applied} migration(s): the schema was {before or 'empty'}, now {after}."
        )
    console.print(f"Database is up to date (schema {after}).")
