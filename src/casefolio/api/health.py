"""`GET /health`: whether this process can serve, for load balancers and people alike.

No token: a load balancer has none. It answers 200 once the database answers a trivial
query, and 503 (with Retry-After, as every database failure does, api/errors.py) when not.
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
    responses={503: {"description": "The database cannot be reached; retry later."}},
)
async def read_health(request: Request) -> dict[str, Any]:
    async with state_of(request).db.read() as session:
        await session.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__, "database": "ok"}


def install(app: FastAPI) -> None:
    """Add /health to the app: on the app itself, like every route (api/routing.py)."""
    app.router.routes.extend(router.routes)
