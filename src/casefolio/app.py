"""create_app(settings): the ASGI application with both API dialects mounted."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from casefolio import __version__
from casefolio.api import errors, health, openapi, v1, v3
from casefolio.api.middleware import HeadAsGet, RateLimitHeaders, StorableUrl
from casefolio.api.ratelimit import RateLimiter
from casefolio.api.routing import operation_id
from casefolio.api.state import AppState
from casefolio.config import Settings
from casefolio.db.engine import Database
from casefolio.fastpath import routes as fastpath_routes
from casefolio.fastpath.gc_tuning import startup_objects_frozen
from casefolio.fastpath.inflight import RequestsInFlight
from casefolio.installation import locate
from casefolio.outbound import runtime as outbound_runtime
from casefolio.storage import open_blob_store, staging
from casefolio.web import install as install_pages
from casefolio.web.deps import problem_answer

log = logging.getLogger(__name__)

DESCRIPTION = """\
casefolio is a document store for legal case work.

* `/api/v1`: the integrations API. Authenticate with `X-API-Token: <token>`
  (or `Authorization: Bearer <token>`). Errors are `application/problem+json`.
* `/api/v3`: an OpenProject API v3 compatible HAL dialect for documents and attachments.

Every response of an endpoint carries `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset` (a call without a valid token counts against the client's address);
a 429 carries `Retry-After`.
"""


def create_app(
    settings: Settings, *, freeze_startup_objects: bool = False, run_worker: bool = False
) -> FastAPI:
    """Given settings, return the application; resources open in its lifespan.

    `freeze_startup_objects` (server processes): once start-up is done, the objects it made
    are moved out of the garbage collector's sight (fastpath/gc_tuning.py).

    `run_worker`: deliver webhooks from this process too (server processes, unless
    CASEFOLIO_WORKER_IN_SERVER is off).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = AppState(
            settings=settings,
            db=Database.open(settings),
            blobs=open_blob_store(settings),
            limiter=RateLimiter.from_url(settings.redis_url, settings.rate_limit_per_minute),
        )
        app.state.casefolio = state
        # Uploads of a process killed mid-way (kill -9, a crash) leave their staging files;
        # this removes those of processes that are gone, never those of a running one.
        removed = await anyio.to_thread.run_sync(staging.sweep, state.blobs.staging_dir)
        if removed:
            log.info("removed %d staging file(s) left by stopped processes", len(removed))
        try:
            with startup_objects_frozen(freeze_startup_objects):
                async with outbound_runtime.background(
                    settings, state.db, run_worker=run_worker, blobs=state.blobs
                ):
                    yield
        finally:
            await state.limiter.close()
            await state.blobs.close()
            state.reads.close()
            await state.db.close()

    # Swagger UI loads its scripts from the installed package, not a CDN, so /docs works
    # offline and inside office networks. No ReDoc: its page fetches a logo from its CDN.
    app = FastAPIOffline(
        title="casefolio",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs/assets",
        swagger_ui_parameters={"validatorUrl": None},
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        openapi_tags=[{"name": tag} for tag in [*v1.TAGS, *v3.TAGS, *health.TAGS]],
    )
    errors.install(app)
    openapi.install(app)
    v1.install(app)
    if not settings.fast_reads:
        fastpath_routes.resolve_by_fastapi(app)
    v3.install(app)
    health.install(app)
    install_pages(app)
    # Last added runs first: HEAD is rewritten before anything else sees the request.
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(RequestsInFlight)
    app.add_middleware(StorableUrl, answer=problem_answer)
    app.add_middleware(HeadAsGet)
    return app


def app_from_env() -> FastAPI:
    """Factory for server processes: settings come from the environment (and TOML file)."""
    settings = locate().settings
    return create_app(settings, freeze_startup_objects=True, run_worker=settings.worker_in_server)
