"""`GET /health`: whether this process can serve, for load balancers and people alike.

No token: a load balancer has none. It answers 200 once the database answers a trivial
query, and 503 (with Retry-After, as every database failure does, api/errors.py) when not.
`rateLimits` says where budgets are counted: "redis", "process", or "process (Redis
unreachable)" (api/ratelimit.py); `blobStore` whether files can be stored and read ("ok",
or "unavailable" with why in the log). Neither changes the status: without them this
process still serves everything else, and so does every other process. The blob store is
asked at most once every two seconds per process (storage/health.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import text

from casefolio import __version__
from casefolio.api.deps import state_of
from casefolio.api.routing import operation_id

HEALTH_PATH = "/health"
TAGS = ["health"]

router = APIRouter(tags=[*TAGS], generate_unique_id_function=operation_id)


@router.get(
    HEALTH_PATH,
    summary="Health check (no token needed)",
    description="200 while this process can query its database. `rateLimits` says where "
    'request budgets are counted: `"redis"`, `"process"` (no Redis configured), or '
    '`"process (Redis unreachable)"` while Redis does not answer (the API still serves). '
    '`blobStore` is `"ok"`, or `"unavailable"` while the S3 bucket does not answer within '
    "a second, or the local folder cannot be written (uploads and downloads answer 503 or "
    "507 meanwhile; everything else serves). Each process asks the store at most once every "
    "two seconds, so the answer may be that old.",
    responses={503: {"description": "The database cannot be reached; retry later."}},
)
async def read_health(request: Request) -> dict[str, Any]:
    state = state_of(request)
    async with state.db.read() as session:
        await session.execute(text("SELECT 1"))
    # Redis holds only the rate limits' counters: without it this process still serves.
    rate_limits = await state.limiter.check_shared()
    return {
        "status": "ok",
        "version": __version__,
        "database": "ok",
        "rateLimits": rate_limits,
        "blobStore": await state.blob_health(),
    }


def install(app: FastAPI) -> None:
    """Add /health to the app: on the app itself, like every route (api/routing.py)."""
    app.router.routes.extend(router.routes)
