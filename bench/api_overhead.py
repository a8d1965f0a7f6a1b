"""1. API overhead: GET one document's metadata with a token vs. a bare FastAPI endpoint.

Both apps run, one after the other, under the same ASGI server settings (1 worker; uvicorn
with httptools + uvloop, then granian), loaded by the same client for the same time.
Target: casefolio >= 0.5x the bare app's requests/s. p50/p99 latency are reported.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import (
    Api,
    Options,
    Result,
    bare_server,
    casefolio_server,
    instance,
    log,
)
from bench.load import run_get_load

NAME = "api_overhead"
TARGET = 0.5


def run(opts: Options, workdir: Path, result: Result) -> None:
    result.params.update(
        duration_s=opts.duration,
        connections=opts.connections,
        servers=list(opts.servers),
        workers=1,
        log_level=opts.log_level,
    )
    warmup = 1.0 if opts.quick else 2.0
    with instance(opts, workdir, NAME) as inst:
        doc_path = ""
        json_path = workdir / "api-overhead-document.json"
        for kind in opts.servers:
            with casefolio_server(inst, server=kind, log_level=opts.log_level) as srv:
                if not doc_path:
                    with Api(srv.base, inst.token) as api:
                        project = api.create_project("api overhead")
                        doc = api.upload_bytes(project, "memo.pdf", b"%PDF-1.7 bench\n" * 64)
                        doc_path = f"/api/v1/projects/{project}/documents/{doc['id']}"
                        body = api.get_json(doc_path.removeprefix("/api/v1"), "read document")
                    json_path.write_text(json.dumps(body))
                    result.details["document_json_bytes"] = len(json.dumps(body))
                log(f"{kind}: casefolio GET {doc_path} for {opts.duration:g}s")
                ours = run_get_load(
                    srv.base + doc_path,
                    inst.headers,
                    connections=opts.connections,
                    duration=opts.duration,
                    warmup=warmup,
                )
            with bare_server(workdir, json_path, server=kind, log_level=opts.log_level) as bare:
                log(f"{kind}: bare FastAPI app for {opts.duration:g}s")
                ref = run_get_load(
                    bare.base + "/api/v1/projects/1/documents/1",
                    {},
                    connections=opts.connections,
                    duration=opts.duration,
                    warmup=warmup,
                )
            result.details[kind] = {"casefolio": ours, "bare": ref}
            bad = ours["non2xx"] + ours["errors"]
            note = f"{bad} failed requests!" if bad else ours["tool"]
            result.add(
                f"{kind}: req/s",
                ours["rps"],
                "req/s",
                reference=ref["rps"],
                reference_label="bare FastAPI",
                target=TARGET,
                note=note,
            )
            result.add(
                f"{kind}: p50 latency",
                ours["p50_ms"],
                "ms",
                reference=ref["p50_ms"],
                reference_label="bare FastAPI",
            )
            result.add(
                f"{kind}: p99 latency",
                ours["p99_ms"],
                "ms",
                reference=ref["p99_ms"],
                reference_label="bare FastAPI",
            )
