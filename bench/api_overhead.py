"""1. API overhead: GET one document's metadata with a token vs. a bare FastAPI endpoint.

Both apps run under the same ASGI server settings (1 worker; uvicorn with httptools and
asyncio's event loop, then granian) and are loaded by the same client for the same time.
The two servers are up together and measured in alternating rounds (casefolio, bare,
casefolio, bare, ...): this VM's speed drifts by tens of percent within minutes, and a pair
of neighbouring runs shares the drift. The rows give the median of each app's rounds; every
round's ratio is in the note and the JSON.
Target: casefolio >= 0.5x the bare app's requests/s. p50/p99 latency are reported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import (
    Api,
    Options,
    Result,
    bare_server,
    casefolio_server,
    instance,
    log,
    median,
)
from bench.load import run_get_load

NAME = "api_overhead"
TARGET = 0.5


def run(opts: Options, workdir: Path, result: Result) -> None:
    result.params.update(
        duration_s=opts.duration,
        rounds=opts.rounds,
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
                with bare_server(workdir, json_path, server=kind, log_level=opts.log_level) as bare:
                    targets = {
                        "casefolio": (srv.base + doc_path, inst.headers),
                        "bare": (bare.base + "/api/v1/projects/1/documents/1", {}),
                    }
                    runs = _alternate(opts, kind, targets, warmup)
            _report(result, kind, runs)


def _alternate(
    opts: Options, kind: str, targets: dict[str, tuple[str, dict[str, str]]], warmup: float
) -> dict[str, list[dict[str, Any]]]:
    """Load each target in turn, `opts.rounds` times; return each one's runs in order."""
    runs: dict[str, list[dict[str, Any]]] = {app: [] for app in targets}
    for round_no in range(1, opts.rounds + 1):
        for app, (url, headers) in targets.items():
            log(f"{kind}: round {round_no}/{opts.rounds}, {app} for {opts.duration:g}s")
            runs[app].append(
                run_get_load(
                    url,
                    headers,
                    connections=opts.connections,
                    duration=opts.duration,
                    warmup=warmup,
                )
            )
    return runs


def _report(result: Result, kind: str, runs: dict[str, list[dict[str, Any]]]) -> None:
    ours, ref = runs["casefolio"], runs["bare"]
    ratios = [o["rps"] / r["rps"] for o, r in zip(ours, ref, strict=True) if r["rps"]]
    result.details[kind] = {"casefolio": ours, "bare": ref, "round_ratios": ratios}
    bad = sum(o["non2xx"] + o["errors"] for o in ours)
    rounds = ", ".join(f"{x:.2f}" for x in ratios)
    note = f"{bad} failed requests!" if bad else f"{ours[0]['tool']}; rounds {rounds}"
    result.add(
        f"{kind}: req/s",
        median([o["rps"] for o in ours]),
        "req/s",
        reference=median([r["rps"] for r in ref]),
        reference_label="bare FastAPI",
        target=TARGET,
        note=note,
    )
    for pct in ("p50", "p99"):
        result.add(
            f"{kind}: {pct} latency",
            median([o[f"{pct}_ms"] for o in ours]),
            "ms",
            reference=median([r[f"{pct}_ms"] for r in ref]),
            reference_label="bare FastAPI",
        )
