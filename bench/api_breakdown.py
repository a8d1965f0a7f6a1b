"""1b. Where a GET's time goes: the api_overhead request, decomposed in-process.

No server and no sockets: each variant is called as an ASGI app (or a coroutine) in a loop on
one event loop, alternating variants round by round, and the median CPU µs per call is
reported (process time: on a shared VM, wall time also counts what the neighbours did).

- bare: bench/bare_app.py's route (the api_overhead reference);
- shaped: FastAPI resolving what casefolio's route declares (middleware, aliased path
  parameters, the request, a caller dependency, a response it builds itself) with no work:
  what FastAPI's per-request resolution would cost the route, which as a DirectRoute
  (fastpath/routes.py) resolves its requests itself and does not pay;
- read: the domain read alone, `documents.get` on the database's StatementReader, as the route does
  (SQLAlchemy, or on SQLite a SELECT compiled once, and the database);
- casefolio: the whole route in the real app, token check and rate limit included;
- casefolio, 16 at once: the same GET by 16 callers together, per GET. On PostgreSQL reads
  that arrive while one is out share the next round trip (fastpath/batching.py); sequential
  calls never do, so this row is where that shows.

So read is the database layer's share of the whole GET, casefolio - bare - read the rest
(middleware, the route's own resolution, token, rate limit, building the answer), and
shaped - bare what FastAPI's resolution of the same shape would add to a bare route.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.bare_app import create_shaped_app
from bench.common import Api, Options, Result, casefolio_server, instance, log

NAME = "api_breakdown"
TOGETHER = 16  # callers at once in the "16 at once" variant, as api_overhead's connections
Call = Callable[[], Awaitable[Any]]


async def asgi_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """One GET through an ASGI app; return the body, raise unless it answered 200."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    status = 0
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {b''.join(body)[:300]!r}")
    return b"".join(body)


async def measure(
    variants: dict[str, Call], calls: int, rounds: int, *, requests_per_call: dict[str, int]
) -> dict[str, float]:
    """Median CPU µs per request of each variant, over `rounds` alternating rounds of `calls`
    requests (a variant making several requests per call is called fewer times)."""
    for call in variants.values():  # warm caches (statements, credentials, pool)
        for _ in range(min(calls, 200)):
            await call()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, call in variants.items():
            per_call = requests_per_call.get(name, 1)
            start = time.process_time()
            for _ in range(calls // per_call):
                await call()
            spent = time.process_time() - start
            samples[name].append(spent / (calls // per_call * per_call) * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


async def _breakdown(env: dict[str, str], path: str, token: str, calls: int, rounds: int):
    from bench.bare_app import create_app as create_bare_app
    from casefolio.app import create_app
    from casefolio.config import Settings
    from casefolio.domain import documents, tokens

    settings = Settings(
        data_dir=Path(env["CASEFOLIO_DATA_DIR"]),
        database_url=env["CASEFOLIO_DATABASE_URL"],
        rate_limit_per_minute=int(env["CASEFOLIO_RATE_LIMIT_PER_MINUTE"]),
    )
    app = create_app(settings)
    headers = [(b"x-api-token", token.encode())]
    async with app.router.lifespan_context(app):
        state = app.state.casefolio
        async with state.db.read() as session:
            who = (await tokens.authenticate(session, secret=token)).principal
        answer = json.loads(await asgi_get(app, path, headers))
        bare = create_bare_app()
        shaped = create_shaped_app(answer)
        _, _, project_id, _, document_id = path.rsplit("/", 4)

        statements = state.reads.statements
        if statements is None:
            raise SystemExit("api_breakdown measures the fast path: leave CASEFOLIO_FAST_READS on")

        async def read() -> None:
            await documents.get(
                statements,
                who=who,
                project_id=int(project_id),
                document_id=int(document_id),
            )

        async def together() -> None:
            await asyncio.gather(*(asgi_get(app, path, headers) for _ in range(TOGETHER)))

        variants: dict[str, Call] = {
            "bare": lambda: asgi_get(bare, path, []),
            "shaped": lambda: asgi_get(shaped, path, []),
            "read": read,
            "casefolio": lambda: asgi_get(app, path, headers),
            "together": together,
        }
        return await measure(variants, calls, rounds, requests_per_call={"together": TOGETHER})


def run(opts: Options, workdir: Path, result: Result) -> None:
    calls, rounds = (300, 3) if opts.quick else (2000, 5)
    result.params.update(calls_per_round=calls, rounds=rounds)
    with instance(opts, workdir, NAME) as inst:
        # The document is made through a real server, as api_overhead makes it.
        with (
            casefolio_server(inst, log_level=opts.log_level) as srv,
            Api(srv.base, inst.token) as api,
        ):
            project = api.create_project("api breakdown")
            doc = api.upload_bytes(project, "memo.pdf", b"%PDF-1.7 bench\n" * 64)
        path = f"/api/v1/projects/{project}/documents/{doc['id']}"
        log(f"in-process: {rounds} rounds of {calls} calls per variant")
        us = asyncio.run(_breakdown(inst.env(), path, inst.token, calls, rounds))
    result.details["us_per_call"] = us
    rest = us["casefolio"] - us["bare"] - us["read"]
    rows = [
        ("in-process GET, µs/request", us["casefolio"], "bare"),
        ("in-process GET, 16 at once, µs/request", us["together"], "bare"),
        ("FastAPI resolving the route's shape, no work", us["shaped"], "bare"),
        ("share: documents.get on the statement reader (database layer)", us["read"], "casefolio"),
        ("share: the rest beyond bare (routing, token, rate limit, answer)", rest, "casefolio"),
    ]
    labels = {"bare": "bare FastAPI", "casefolio": "whole GET"}
    for metric, value, reference in rows:
        result.add(
            metric,
            value,
            "µs",
            reference=us[reference],
            reference_label=labels[reference],
            higher_is_better=False,
        )
