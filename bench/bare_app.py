"""The reference for api_overhead: a bare FastAPI app answering the same URL with the same JSON.

No database, no token check, no rate limit, no middleware: what FastAPI plus the ASGI server
cost on this machine. It runs under exactly the server settings `casefolio serve` uses
(src/casefolio/cli/server.py), so the ratio isolates casefolio's own work.

    BENCH_BARE_JSON=doc.json python -m bench.bare_app --port 8001 --server uvicorn
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi import Path as PathParam


def create_app() -> FastAPI:
    source = os.environ.get("BENCH_BARE_JSON")
    document: dict[str, Any] = json.loads(Path(source).read_text()) if source else {"id": "1"}
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/api/v1/projects/{projectId}/documents/{documentId}")
    async def read_document(projectId: int, documentId: int) -> dict[str, Any]:
        return document

    return app


# Module level: with postponed annotations, FastAPI resolves dependency names here.
async def _caller(request: Request) -> str:
    return "caller"


def create_shaped_app(document: dict[str, Any]) -> FastAPI:
    """FastAPI resolving what casefolio's route declares, and no work: the same ASGI
    middleware, aliased path parameters, the request, an async caller dependency, a response
    model it documents but does not validate (the handler returns its prebuilt JSON
    response), and the first place among the app's routes.

    bench/api_breakdown.py measures it in-process: what FastAPI's per-request resolution
    would cost the route, which casefolio serves as a DirectRoute (fastpath/routes.py) instead.
    """
    # Imported here: the bare app above must not pay for importing casefolio.
    from casefolio.api.middleware import HeadAsGet, RateLimitHeaders
    from casefolio.api.routing import move_to_front
    from casefolio.api.v1.documents_render import DocumentOut
    from casefolio.api.v1.schemas import json_response

    answer = DocumentOut.model_validate(document)

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get(
        "/api/v1/projects/{projectId}/documents/{documentId}",
        response_model=DocumentOut,
    )
    async def read_document(
        project_id: Annotated[int, PathParam(alias="projectId")],
        document_id: Annotated[int, PathParam(alias="documentId")],
        request: Request,
        who: Annotated[str, Depends(_caller)],
    ) -> Response:
        return json_response(answer)

    move_to_front(app, read_document)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(HeadAsGet)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    if args.server == "granian":
        from granian import Granian
        from granian.constants import Interfaces

        Granian(
            "bench.bare_app:create_app",
            address=args.host,
            port=args.port,
            workers=args.workers,
            interface=Interfaces.ASGI,
            factory=True,
            log_level=args.log_level,
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        "bench.bare_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        http="httptools",
        loop="asyncio",  # as `casefolio serve`
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
