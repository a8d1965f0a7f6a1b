"""Listing under concurrency: pages of 10 and of 100 under `wrk -t2 -c32`, against GET one
document in the same run and server, with 1 and 2 server workers.

The project holds a few hundred documents (seeded as `listing` does: one upload, the rest
copied with set-based inserts). For each worker count, GET one document, the first page of
10 and the first page of 100 are loaded in turn for the same time, after a warm-up.
Targets: req/s >= 0.5x GET (page of 10) and >= 0.25x (page of 100); p99 <= 100 ms at 32
connections; p99/p50 printed (fair queueing: <= 5x).

A page asked again before anything is committed is answered from the whole answer kept for
it (fastpath/answers.py), so this load, which writes nothing, measures that. For scale, the
page of 100 is then loaded once more against a server whose kept answers are switched off
(a `sitecustomize` of the benchmark's own; casefolio has no such setting): what a page
costs when every request reads and writes it, as under a steady stream of writes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Api, Instance, Options, Result, casefolio_server, instance, log
from bench.listing import _seed_postgres, _seed_sqlite, seed_template
from bench.load import run_get_load

NAME = "listing_load"
DOCUMENTS = 200
CONNECTIONS = 32
THREADS = 2
WORKERS = (1, 2)
PAGE_TARGETS = {10: 0.5, 100: 0.25}
P99_MAX_MS = 100.0
FAIRNESS_MAX = 5.0
UNKEPT = "page of 100, read every time"

_NO_KEPT_ANSWERS = """
# Benchmark only: every page read and written, none answered from fastpath/answers.py.
import casefolio.fastpath.reads as _reads


async def _read_every_time(self, key, read, size):
    return await self.read(read)


_reads.ReadModel.remembered = _read_every_time
"""


def run(opts: Options, workdir: Path, result: Result) -> None:
    duration = 3.0 if opts.quick else 6.0
    result.params.update(
        documents=DOCUMENTS, connections=CONNECTIONS, threads=THREADS, duration=duration
    )
    with instance(opts, workdir, NAME) as inst:
        for workers in WORKERS:
            with casefolio_server(inst, workers=workers, log_level=opts.log_level) as srv:
                if workers == WORKERS[0]:
                    project, document = _seed(inst, srv.base)
                base = f"{srv.base}/api/v1/projects/{project}/documents"
                urls = {
                    "GET one document": f"{base}/{document}",
                    **{f"page of {size}": f"{base}?limit={size}" for size in PAGE_TARGETS},
                }
                loads: dict[str, dict[str, Any]] = {
                    label: _load(label, url, inst.headers, duration, workers)
                    for label, url in urls.items()
                }
            with casefolio_server(
                inst.with_site(NAME, _NO_KEPT_ANSWERS), workers=workers, log_level=opts.log_level
            ) as srv:
                url = f"{srv.base}/api/v1/projects/{project}/documents?limit=100"
                loads[UNKEPT] = _load(UNKEPT, url, inst.headers, duration, workers)
            result.details[f"workers_{workers}"] = loads
            _report(result, workers, loads)


def _load(
    label: str, url: str, headers: dict[str, str], duration: float, workers: int
) -> dict[str, Any]:
    load = run_get_load(
        url, headers, connections=CONNECTIONS, duration=duration, threads=THREADS, timeout=30
    )
    if load["non2xx"] or load["errors"]:
        raise RuntimeError(f"{label}: {load['non2xx']} non-2xx, {load['errors']} errors")
    fair = load["p99_ms"] / load["p50_ms"]
    log(
        f"{workers} worker(s), {label}: {load['rps']:,.0f} req/s, "
        f"p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms (p99/p50 {fair:.1f})"
    )
    return load


def _seed(inst: Instance, base: str) -> tuple[str, str]:
    with Api(base, inst.token) as api:
        project = api.create_project("listing under load")
        doc = api.upload_bytes(project, "template.bin", b"listing under load\n" * 50)
    template = seed_template(project, doc)
    stamp = datetime.now(UTC) + timedelta(seconds=5)
    if inst.database_url:
        asyncio.run(_seed_postgres(inst.database_url, template, DOCUMENTS - 1, stamp))
    else:
        _seed_sqlite(inst.data_dir / "casefolio.db", template, DOCUMENTS - 1, stamp)
    return project, str(doc["id"])


def _report(result: Result, workers: int, loads: dict[str, dict[str, Any]]) -> None:
    get = loads["GET one document"]
    for size, target in PAGE_TARGETS.items():
        page = loads[f"page of {size}"]
        fair = page["p99_ms"] / page["p50_ms"]
        result.add(
            f"page of {size}, {workers} worker(s), -c{CONNECTIONS}",
            page["rps"],
            "req/s",
            reference=get["rps"],
            reference_label="GET one document",
            target=target,
            note=f"p50 {page['p50_ms']:.1f} ms",
        )
        result.add_absolute(
            f"page of {size} p99, {workers} worker(s)",
            page["p99_ms"],
            "ms",
            maximum=P99_MAX_MS,
            note=f"GET p99 {get['p99_ms']:.1f} ms",
        )
        result.add_absolute(
            f"page of {size} p99/p50, {workers} worker(s)", fair, "x", maximum=FAIRNESS_MAX
        )
    unkept = loads[UNKEPT]
    result.add(
        f"{UNKEPT}, {workers} worker(s) (for scale)",
        unkept["rps"],
        "req/s",
        reference=get["rps"],
        reference_label="GET one document",
        note=f"p50 {unkept['p50_ms']:.1f} ms, p99 {unkept['p99_ms']:.1f} ms",
    )
