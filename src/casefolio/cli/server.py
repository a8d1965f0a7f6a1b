"""`casefolio serve` and `casefolio migrate`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from casefolio.cli._common import console, load_settings
from casefolio.db import migrate as db_migrate


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
    settings = load_settings()
    if migrate and settings.migrate_on_start:
        db_migrate.upgrade(settings)
    console.print(
        f"casefolio on http://{settings.host}:{settings.port} "
        f"({settings.server}, {settings.workers} worker(s)); API docs at /docs"
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
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        "casefolio.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        http="httptools",
        loop="uvloop",
        proxy_headers=False,
        # Importing the app takes seconds on a loaded 2-core machine; uvicorn's default 5 s
        # health check would kill and restart workers that are merely still starting.
        timeout_worker_healthcheck=60,
    )


def migrate() -> None:
    """Apply pending database migrations and exit."""
    settings = load_settings()
    db_migrate.upgrade(settings)
    console.print("Database is up to date.")
